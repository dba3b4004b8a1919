"""TripoSG's files (the diffusers layout of ``VAST-AI/TripoSG``: ``model_index.json`` and one
folder per component, from the Hub or a local folder) and loading them strictly.

Each network's safetensors file is memory-mapped and its tensors assigned to the network
built on the meta device, so the weights (7.9 GB in float32) are held once."""

from __future__ import annotations

from pathlib import Path

import torch

from ...errors import WeightsError
from .. import hub
from ..checkpoint import check_state_dict, read_safetensors
from .config import COMPONENTS, INDEX_FILE, TripoSGConfig, read_json
from .model import NETWORKS, TripoSG
from .vae import UNUSED_PREFIXES, unused_layout

REPO_ID = "VAST-AI/TripoSG"
MODEL_FILES = (
    INDEX_FILE,
    *(f"{name}/{file}" for name, files in COMPONENTS.items() for file in files if file is not None),
)


def check_model_dir(folder: Path) -> Path:
    """The folder, if it has every file of TripoSG's layout; else a message naming those missing
    (or, for another diffusers pipeline's folder, what it is)."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: model folder not found")
    if (folder / INDEX_FILE).is_file():
        index = read_json(folder / INDEX_FILE)
        if not set(COMPONENTS) <= set(index):
            raise WeightsError(
                f"{folder}: its {INDEX_FILE} describes a {index.get('_class_name', 'pipeline')}, not TripoSG"
            )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise WeightsError(f"{folder}: a TripoSG folder needs {shown}")
    return folder


def download_model(name: str = "triposg", **hub_options) -> Path:
    """Folder in the Hub cache holding the model's files (``name``: "triposg" or a Hub repo
    id), downloading what is missing (``hub_options``: ``hub.download``'s)."""
    return hub.download(REPO_ID if name == "triposg" else name, MODEL_FILES, **hub_options)


def load_model(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TripoSG:
    """Build the networks from the components' configurations and load each one's weights
    strictly (the VAE's encoder, unused at inference, is checked and left out)."""
    folder = check_model_dir(Path(folder))
    config = TripoSGConfig.load(folder)
    with torch.device("meta"):
        model = TripoSG(config)
    for name in NETWORKS:
        network = getattr(model, name)
        path = folder / name / COMPONENTS[name][1]
        expected = network.state_dict()
        if name == "vae":
            expected |= unused_layout(config.vae)
        state = read_safetensors(path)
        check_state_dict(expected, state, path, f"{name}/{COMPONENTS[name][0]}")
        state = {key: value for key, value in state.items() if name != "vae" or not key.startswith(UNUSED_PREFIXES)}
        network.load_state_dict(state, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
