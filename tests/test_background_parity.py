"""Our masks against rembg's own (2.0.86, in .venv-rembg, made here on first use) for the
same model files on real photographs: alpha equal within 1/255."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from openlrm_blender.engine.input.background import BackgroundRemover
from openlrm_blender.engine.input.read import read_rgba
from tests.conftest import REPO
from tests.test_background import darkness_model

REMBG_PYTHON = REPO / ".venv-rembg" / "bin" / "python"


@pytest.fixture(scope="module")
def rembg_python():
    """rembg's environment, made with the project's own venv script."""
    env = dict(os.environ, OPENLRM_VENV=".venv-rembg", OPENLRM_REQUIREMENTS="requirements-rembg.txt")
    subprocess.run(["bash", "-c", ". scripts/venv.sh"], cwd=REPO, env=env, check=True, timeout=1800)
    return REMBG_PYTHON


def test_our_masks_equal_rembgs_on_photographs(rembg_python, tmp_path):
    darkness_model(tmp_path / "u2net-layout.onnx", 320)
    darkness_model(tmp_path / "isnet-layout.onnx", 1024)
    env = {key: value for key, value in os.environ.items() if key not in ("REMBG_HOME", "XDG_DATA_HOME")}
    done = subprocess.run(
        [str(rembg_python), str(REPO / "tests" / "rembg_scripts" / "rembg_masks.py"), str(tmp_path)],
        check=False,
        env=dict(env, U2NET_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "rembg-masks.npz") as saved:
        theirs = {key: saved[key] for key in saved.files}
    assert len(theirs) == 8
    for key, their_alpha in theirs.items():
        model, photo = key.split("/")
        remover = BackgroundRemover(tmp_path / f"{model}.onnx")
        ours = np.round(remover(read_rgba(tmp_path / f"{photo}.png")[..., :3]) * 255).astype(np.int16)
        difference = np.abs(ours - their_alpha.astype(np.int16))
        print(
            f"{key}: {their_alpha.shape}, largest difference {difference.max()}/255, "
            f"{np.mean(difference > 0):.2%} differ"
        )
        assert ours.shape == their_alpha.shape and difference.max() <= 1, key
        assert their_alpha.std() > 10, f"{key}: the stand-in model gave a flat mask; the test would prove little"
