"""Finding a model's files (Hugging Face Hub or a local folder) and loading them strictly.

A model is a folder with ``config.json`` and ``model.safetensors``. Hub downloads go
through ``huggingface_hub`` into its standard cache, so ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as they do everywhere else. Only safetensors
are read: a pickle checkpoint is refused, never unpickled.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...errors import WeightsError
from .. import hub
from ..checkpoint import check_state_dict, read_safetensors, renamed
from .config import PUBLISHED_MODELS, ModelConfig
from .model import OpenLRM

HUB_OWNER = "zxhezexin"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_FILES = ("pytorch_model.bin", "model.bin", "model.pth", "model.pt", "model.ckpt")
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# Keys the published files may carry that the model does not use.
UNUSED_KEYS = ("encoder.model.mask_token",)
# Our names for what the published checkpoint calls otherwise: its decoder is "synthesizer"
# and that decoder's MLP "decoder"; ours are "decoder" and "mlp".
PUBLISHED_NAMES = {"decoder.mlp.": "synthesizer.decoder."}

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def repo_id_for(name: str) -> str:
    """Hub repo id for a published model name or a full ``owner/name`` id."""
    if name in PUBLISHED_MODELS:
        return f"{HUB_OWNER}/{name}"
    if _REPO_ID.fullmatch(name):
        return name
    raise WeightsError(
        f"unknown model name {name!r}: use one of {', '.join(PUBLISHED_MODELS)}, a Hub repo id (owner/name) "
        "or a local folder with config.json and model.safetensors"
    )


def check_model_dir(folder: Path) -> Path:
    """The folder, if it has both model files; else a message naming what is missing."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: model folder not found")
    if not (folder / WEIGHTS_FILE).is_file():
        pickles = [name for name in PICKLE_FILES if (folder / name).is_file()]
        if pickles:
            raise WeightsError(
                f"{folder / WEIGHTS_FILE}: file not found; {pickles[0]} is a pickle checkpoint, which is never "
                "loaded (unpickling can run code): convert it to safetensors first"
            )
        raise WeightsError(f"{folder / WEIGHTS_FILE}: file not found")
    if not (folder / CONFIG_FILE).is_file():
        raise WeightsError(f"{folder / CONFIG_FILE}: file not found")
    return folder


def download_model(name: str, **hub_options) -> Path:
    """Folder in the Hub cache holding the model's two files, downloading what is missing
    (``hub_options``: ``hub.download``'s revision, token, cache_dir, offline, progress)."""
    return hub.download(repo_id_for(name), MODEL_FILES, **hub_options)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = read_safetensors(path)
    for key in UNUSED_KEYS:
        state.pop(key, None)
    return state


def published_state(model: OpenLRM) -> dict[str, torch.Tensor]:
    """The model's tensors under the published checkpoint's names."""
    return {renamed(key, PUBLISHED_NAMES): value for key, value in model.state_dict().items()}


def load_model(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> OpenLRM:
    """Build the model from ``config.json`` and load ``model.safetensors`` strictly.

    The model is built on the meta device and the file's tensors are assigned to it,
    so the weights are never held twice.
    """
    folder = check_model_dir(Path(folder))
    config = ModelConfig.load(folder / CONFIG_FILE)
    with torch.device("meta"):
        model = OpenLRM(config)
    state = read_state_dict(folder / WEIGHTS_FILE)
    check_state_dict(published_state(model), state, folder / WEIGHTS_FILE, CONFIG_FILE)
    ours = {published: key for key, published in PUBLISHED_NAMES.items()}
    model.load_state_dict({renamed(key, ours): value for key, value in state.items()}, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
