"""Finding TRELLIS's files (a local folder, or the Hub) and loading them strictly.

A TRELLIS folder is the published repository's files (``pipeline.json`` and ``ckpts/`` with a
``.json`` and a ``.safetensors`` per network) plus a ``dinov2/`` folder holding the image
encoder in Hugging Face's layout. From the Hub the two come from their own repositories
(``microsoft/TRELLIS-image-large``, ``facebook/dinov2-with-registers-large``), sized together
before either is fetched; the encoder's folder is then found beside the model's in the cache.

The published checkpoints keep each network's torso (its transformer blocks and res-blocks:
the linear layers and convolutions) in float16 and the rest in float32. A float32 run reads
them all as float32; a half-precision run keeps the torso in half precision, as the published
code runs it on a GPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import WeightsError
from .. import hub
from ..checkpoint import check_state_dict, read_safetensors
from .config import PIPELINE_FILE, ROLES, TrellisConfig, checkpoint_stems
from .image_encoder import CONFIG_FILE, FOLDER, WEIGHTS_FILE, load_image_encoder
from .model import NETWORKS, Trellis
from .sparse import SubMConv

REPO_ID = "microsoft/TRELLIS-image-large"
ENCODER_REPO_ID = "facebook/dinov2-with-registers-large"
ENCODER_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# The parts of each network its published conversion to float16 turns (its "torso").
TORSOS = {
    "structure_flow": ("blocks",),
    "structure_decoder": ("blocks", "middle_block"),
    "latent_flow": ("input_blocks", "blocks", "out_blocks"),
    "gaussian_decoder": ("blocks",),
    "mesh_decoder": ("blocks", "upsample"),
}
HALF_LAYERS = (nn.Linear, nn.Conv3d, SubMConv)


def checkpoint_files(folder: Path) -> list[str]:
    """The checkpoint files of every network a run loads, relative to the folder (its
    pipeline.json names them)."""
    stems = checkpoint_stems(folder)
    return [f"{stems[role]}{suffix}" for role in ROLES for suffix in (".json", ".safetensors")]


def encoder_folder(folder: Path) -> Path:
    """Where a TRELLIS folder's image encoder is: its own ``dinov2/``, else (a Hub download)
    the encoder repository's copy in the same Hugging Face cache."""
    own = folder / FOLDER
    if own.is_dir() or len(folder.parts) < 3 or folder.parent.name != "snapshots":
        return own
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(ENCODER_REPO_ID, CONFIG_FILE, cache_dir=folder.parents[2])
    return Path(cached).parent if isinstance(cached, str) else own


def check_model_dir(folder: Path) -> Path:
    """The folder, once every file a run reads is there (the encoder's too), else which are not."""
    folder = Path(folder)
    if not (folder / PIPELINE_FILE).is_file():
        raise WeightsError(f"{folder}: not a TRELLIS folder: it has no {PIPELINE_FILE}")
    missing = [name for name in checkpoint_files(folder) if not (folder / name).is_file()]
    encoder = encoder_folder(folder)
    missing += [f"{FOLDER}/{name}" for name in ENCODER_FILES if not (encoder / name).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        hint = (
            f" (its image encoder: {ENCODER_REPO_ID}'s {' and '.join(ENCODER_FILES)} in {FOLDER}/)"
            if any(name.startswith(f"{FOLDER}/") for name in missing)
            else ""
        )
        raise WeightsError(f"{folder}: a TRELLIS folder needs {shown}{hint}")
    return folder


def download_model(name: str = "trellis", **hub_options) -> Path:
    """TRELLIS's files and its image encoder's in the Hub cache (``name``: "trellis" or a Hub
    repository in TRELLIS's layout), fetching what is missing: pipeline.json first (it names
    the checkpoints), then every other file of both repositories sized together."""
    repo_id = REPO_ID if name == "trellis" else name
    revision = hub_options.pop("revision", None)
    progress = hub_options.pop("progress", None)
    folder = hub.download(repo_id, [PIPELINE_FILE], revision=revision, **hub_options)
    files = checkpoint_files(folder)
    hub.download_repositories(
        [(repo_id, files, revision), (ENCODER_REPO_ID, ENCODER_FILES, None)], progress=progress, **hub_options
    )
    return check_model_dir(folder)


def load_model(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Trellis:
    """Every network from its checkpoint, checked key by key and shape by shape; built on the
    meta device so the weights are held once. ``dtype``: the torso's precision."""
    folder = check_model_dir(Path(folder))
    config = TrellisConfig.load(folder)
    encoder = load_image_encoder(encoder_folder(folder), device)
    with torch.device("meta"):
        model = Trellis(config, encoder.config)
    model.image_encoder = encoder
    for role, name in NETWORKS.items():
        network = getattr(model, name)
        path = folder / f"{config.checkpoints[role]}.safetensors"
        state = read_safetensors(path)
        check_state_dict(network.state_dict(), state, path, f"{config.checkpoints[role]}.json")
        network.load_state_dict({key: value.float() for key, value in state.items()}, strict=True, assign=True)
        network.to(device)
        for part in TORSOS[name]:
            for layer in getattr(network, part).modules():
                if isinstance(layer, HALF_LAYERS) and dtype != torch.float32:
                    layer.to(dtype)
    return model.eval().requires_grad_(False)
