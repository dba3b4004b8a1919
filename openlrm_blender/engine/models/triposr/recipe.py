"""How a run uses a TripoSR model: its files, its input size, the published image
preparation, the encoder call (no camera), the turn from its frame into ours, and colours
rounded to 8 bits as its export does."""

from __future__ import annotations

import math

import torch

from ...camera import SourceCamera
from ...errors import EngineError
from ...input.prepare import CutOut
from ..encoding import Encoding
from ..field import StepCallback
from ..triplane_field import TriplaneField
from . import image
from .image import cut_out, photo_canvas
from .model import TripoSR, to_output_frame
from .weights import check_model_dir, download_model, load_model

ROUNDING = "round"
# Its renderer's azimuth-0 camera: 1.9 from the centre, a vertical field of view of 40 degrees.
CAMERA_DISTANCE = 1.9
FOVY_DEGREES = 40.0

__all__ = ["ROUNDING", "check_model_dir", "cut_out", "download_model", "encode", "load_model", "model_input",
           "photo_camera", "photo_canvas", "to_output_frame"]  # fmt: skip


def photo_camera(camera_distance: float) -> SourceCamera:
    """TripoSR's input view, whatever ``camera_distance`` says (the model takes no camera)."""
    return SourceCamera(CAMERA_DISTANCE, 0.5 / math.tan(math.radians(FOVY_DEGREES / 2)))


def model_input(
    model: TripoSR, cut: CutOut, input_size: int = 0, recenter_object: bool = True, foreground_ratio: float = 0.85
) -> torch.Tensor:
    """The published preparation at ``input_size`` (0: the model's ``cond_image_size``)."""
    return image.model_input(cut, _input_size(model, input_size), recenter_object, foreground_ratio)


def _input_size(model: TripoSR, asked: int) -> int:
    """The size asked for (a multiple of the ViT's patch), else the model's ``cond_image_size``."""
    patch = model.config.vit.patch_size
    if asked and asked % patch:
        raise EngineError(
            f"input size must be a multiple of {patch} for TripoSR (or 0 for the model's own), got {asked}"
        )
    return asked or model.config.cond_image_size


def encode(model: TripoSR, pixels: torch.Tensor, settings: Encoding, step: StepCallback | None = None) -> TriplaneField:
    """The image -> its triplanes' field. TripoSR takes no camera: the run's camera distance
    matters only to the photo texture."""
    parameter = next(model.parameters())
    after_layer = None if step is None else lambda done, total: step(done / total, f"transformer layer {done}/{total}")
    planes = model(pixels.to(parameter.device, parameter.dtype), after_layer=after_layer)
    return TriplaneField(model.decoder, planes)
