"""TripoSR's files (``config.yaml`` and ``model.safetensors`` or ``model.ckpt``, from the Hub
or a local folder) and loading them strictly. ``model.ckpt`` is a pickle: it is read only
with PyTorch's tensors-only unpickler (``checkpoint.read_tensors_pickle``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import WeightsError
from .. import hub
from ..checkpoint import check_state_dict, read_safetensors, read_tensors_pickle
from .config import CONFIG_FILE, TripoSRConfig
from .model import TripoSR

REPO_ID = "stabilityai/TripoSR"
WEIGHTS_FILES = ("model.safetensors", "model.ckpt")  # the first found is read
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILES)


def weights_file(folder: Path) -> Path:
    found = next((folder / name for name in WEIGHTS_FILES if (folder / name).is_file()), None)
    if found is None:
        raise WeightsError(f"{folder}: neither {' nor '.join(WEIGHTS_FILES)} is there")
    return found


def check_model_dir(folder: Path) -> Path:
    """The folder, if it has TripoSR's files; else a message naming what is missing."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: model folder not found")
    if not (folder / CONFIG_FILE).is_file():
        raise WeightsError(f"{folder / CONFIG_FILE}: file not found")
    weights_file(folder)
    return folder


def download_model(name: str = "triposr", **hub_options) -> Path:
    """Folder in the Hub cache holding the model's files (``name``: "triposr" or a Hub repo
    id), downloading what is missing (``hub_options``: ``hub.download``'s)."""
    return hub.download(REPO_ID if name == "triposr" else name, MODEL_FILES, **hub_options)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(path) if path.suffix == ".safetensors" else read_tensors_pickle(path)


def load_model(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TripoSR:
    """Build the model from ``config.yaml`` (and ``vit_config.json``) and load its weights
    strictly, built on the meta device so the weights are never held twice."""
    folder = check_model_dir(Path(folder))
    config = TripoSRConfig.load(folder)
    with torch.device("meta"):
        model = TripoSR(config)
    path = weights_file(folder)
    state = read_state_dict(path)
    check_state_dict(model.state_dict(), state, path, CONFIG_FILE)
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
