"""How a run uses a TripoSR model: its files, its input size, the published image
preparation, the encoder call (no camera), the turn from its frame into ours, and colours
rounded to 8 bits as its export does."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...errors import EngineError
from ...camera import SourceCamera
from .image import cut_out, model_input, photo_canvas, prepare_image
from .model import TripoSR, to_output_frame
from .weights import check_model_dir, download_model, load_model

ROUNDING = "round"
# Its renderer's azimuth-0 camera: 1.9 from the centre, a vertical field of view of 40 degrees.
CAMERA_DISTANCE = 1.9
FOVY_DEGREES = 40.0

__all__ = ["ROUNDING", "check_model_dir", "cut_out", "download_model", "encode", "input_size", "load_model",
           "model_input", "photo_camera", "photo_canvas", "prepare_image", "to_output_frame"]  # fmt: skip


def photo_camera(camera_distance: float) -> SourceCamera:
    """TripoSR's input view, whatever ``camera_distance`` says (the model takes no camera)."""
    return SourceCamera(CAMERA_DISTANCE, 0.5 / math.tan(math.radians(FOVY_DEGREES / 2)))


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
