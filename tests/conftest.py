"""Shared fixtures: the tiny parity model from ../shared and random real-layout models."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OPENLRM_SHARED", REPO.parent / "shared"))
TINY = SHARED / "vectors" / "tiny"
SPEC = SHARED / "spec"

# The parity tests compare with the published code's outputs on the CPU at 1e-4, so they run on
# the CPU wherever they run: on a CUDA machine "auto" would take the GPU, whose TF32 matrix
# and convolution kernels differ at about 1e-3 (scripts/device_check.sh measures the GPU).
PARITY_DEVICE = "cpu"

# Fixtures kept with their helpers in tests/support, registered here for every test module
# (a test names them as parameters; importing them would shadow the parameter).
pytest_plugins = ["tests.support.blender_addon", "tests.support.model_server", "tests.support.wheel_index"]

# Settings the tiny vector was made with (meta.json).
TINY_SIZE = 56
TINY_GRID = 32


def reduced(size: str, **overrides) -> dict:
    """A published config.json at reduced depth: same widths and key layout, fewer blocks."""
    from tests.support.random_models import PUBLISHED_CONFIGS

    config = dict(PUBLISHED_CONFIGS[size])
    config.update(encoder_depth=1, transformer_layers=1)
    config["encoder_num_heads"] = config["encoder_feat_dim"] // 64
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    if not (TINY / "model.safetensors").is_file():
        pytest.fail(f"the shared tiny model is missing: {TINY} (set OPENLRM_SHARED)")
    return TINY


@pytest.fixture(scope="session")
def expected(tiny_dir: Path) -> dict[str, np.ndarray]:
    with np.load(tiny_dir / "expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random model with the real small key layout (reduced depth), in the Hub file layout."""
    from tests.support.random_models import save_random_model

    return save_random_model(tmp_path_factory.mktemp("small") / "model", reduced("small"), seed=1)


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random base-layout model: its cross-attention is stored packed."""
    from tests.support.random_models import save_random_model

    return save_random_model(tmp_path_factory.mktemp("base") / "model", reduced("base"), seed=2)


@pytest.fixture(scope="session")
def object_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real small layout at reduced depth, shaped into one compact coloured object."""
    from openlrm_blender.engine.models.openlrm.config import ModelConfig
    from tests.support.random_models import object_model, save_model

    raw = reduced("small")
    return save_model(
        object_model(ModelConfig.from_dict(raw), seed=0), tmp_path_factory.mktemp("object") / "model", raw
    )
