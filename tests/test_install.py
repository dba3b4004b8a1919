"""Build the linux-x64 zip and install it through Blender's extension manager, in a Python
that sees only Blender: the add-on must run on its bundled wheels alone."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

# What Blender as a module needs from its own environment (Blender ships these itself).
BLENDER_OWN = ("bpy", "numpy", "numpy.libs", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "zstandard")


@pytest.fixture(scope="module")
def linux_zip() -> Path:
    done = subprocess.run(
        [sys.executable, "build.py", "--platform", "linux-x64"], cwd=REPO, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout + done.stderr
    path = REPO / "dist" / "openlrm_blender-0.1.0-linux_x64.zip"
    assert f"dist/{path.name}: " in done.stdout  # the size line
    return path


def test_zip_holds_only_linux_wheels_and_no_numpy(linux_zip):
    names = zipfile.ZipFile(linux_zip).namelist()
    wheels = [Path(name).name for name in names if name.endswith(".whl")]
    assert any(name.startswith("torch-2.13.0") for name in wheels)
    assert not any(name.startswith("numpy-") for name in wheels)
    assert not any("win_amd64" in name or "macosx" in name for name in wheels)
    assert "blender_manifest.toml" in names and "__init__.py" in names and "engine/pipeline.py" in names


def test_install_run_uninstall(linux_zip, tiny_dir, tmp_path):
    site = tmp_path / "blender-site"
    site.mkdir()
    packages = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent
    for name in BLENDER_OWN:
        if (packages / name).exists():
            (site / name).symlink_to(packages / name)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"), PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    script = REPO / "tests" / "blender_scripts" / "install_check.py"
    # -S: no site-packages of this environment; only the Blender-shipped set above is visible.
    command = [sys.executable, "-S", str(script), str(linux_zip), str(tiny_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(lines[0][len("RESULT ") :])
    assert report["install"] == ["FINISHED"] and report["operator"] == ["FINISHED"]
    installed = str(tmp_path / "user" / "extensions")
    assert all(path.startswith(installed) for path in report["modules"].values()), report["modules"]
    assert report["object"] == {"name": "input", "vertices": 13616, "faces": 25412}
    assert report["uninstall"] == ["FINISHED"]
    assert not any(report["left_registered"].values()), report["left_registered"]
    assert not list((tmp_path / "user" / "extensions" / "user_default").glob("openlrm*"))
