"""How a run uses a TripoSR model: its files, its input size, the published image
preparation, the encoder call (no camera), the turn from its frame into ours, and colours
rounded to 8 bits as its export does."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ...errors import EngineError
from .image import prepare_image
from .model import TripoSR, to_output_frame
from .weights import check_model_dir, download_model, load_model

ROUNDING = "round"

__all__ = ["ROUNDING", "check_model_dir", "download_model", "encode", "input_size", "load_model", "prepare_image",
           "to_output_frame"]  # fmt: skip


def input_size(model: TripoSR, asked: int) -> int:
    """The size asked for (a multiple of the ViT's patch), else the model's ``cond_image_size``."""
    patch = model.config.vit.patch_size
    if asked and asked % patch:
        raise EngineError(f"input size must be a multiple of {patch} for TripoSR (or 0 for the model's own), got {asked}")
    return asked or model.config.cond_image_size


def encode(
    model: TripoSR, pixels: torch.Tensor, camera_distance: float, after_layer: Callable[[int, int], None]
) -> torch.Tensor:
    """TripoSR takes no camera: ``camera_distance`` matters only to the photo texture."""
    parameter = next(model.parameters())
    return model(pixels.to(parameter.device, parameter.dtype), after_layer=after_layer)
