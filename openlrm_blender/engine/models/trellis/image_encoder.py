"""TRELLIS's image condition: DINOv2 ViT-L/14 with 4 registers (the published code's
``dinov2_vitl14_reg`` from DINOv2's hub; ours read from a ``dinov2/`` folder in Hugging Face's
``Dinov2WithRegisters`` layout), all its tokens before the final norm, normalised without the
norm's weights. The flows attend to every one of them: class token, registers and patches."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import WeightsError
from ..checkpoint import check_state_dict, read_safetensors
from ..config_files import read_json
from ..dinov2 import Dinov2, Dinov2Config

FOLDER = "dinov2"  # in a TRELLIS model folder
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def load_image_encoder(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Dinov2:
    """The encoder in ``folder`` (its ``config.json`` and ``model.safetensors``), loaded strictly;
    built on the meta device so the weights are held once."""
    folder = Path(folder)
    config = Dinov2Config.from_json(read_json(folder / CONFIG_FILE), folder / CONFIG_FILE)
    if not config.num_register_tokens:
        raise WeightsError(f"{folder / CONFIG_FILE}: TRELLIS's DINOv2 has register tokens, this one has none")
    with torch.device("meta"):
        encoder = Dinov2(config)
    path = folder / WEIGHTS_FILE
    state = read_safetensors(path)
    check_state_dict(encoder.state_dict(), state, path, f"{folder.name}/{CONFIG_FILE}")
    encoder.load_state_dict(state, strict=True, assign=True)
    return encoder.to(device=device, dtype=dtype).eval().requires_grad_(False)


def image_condition(encoder: Dinov2, pixels: torch.Tensor) -> torch.Tensor:
    """Normalised pixels (N, 3, 518, 518) -> ``cond`` (N, 1374, width): one row per photo."""
    parameter = next(encoder.parameters())
    tokens = encoder.prenorm_tokens(pixels.to(parameter.device, parameter.dtype))
    return F.layer_norm(tokens, tokens.shape[-1:])


def negative_condition(cond: torch.Tensor) -> torch.Tensor:
    """The unconditional input of classifier-free guidance: zeros the shape of one photo's
    condition, however many photos ``cond`` holds."""
    return torch.zeros_like(cond[:1])
