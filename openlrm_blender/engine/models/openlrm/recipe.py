"""How a run uses an OpenLRM model: its files, its input size, the image preparation, the
encoder call with the source camera, and its output (already in our frame, colours
floored to 8 bits as published)."""

from __future__ import annotations

import numpy as np
import torch

from ...camera import SourceCamera
from ...errors import EngineError
from ...input import prepare
from ...input.prepare import CutOut, cut_out, photo_canvas
from ..encoding import Encoding
from ..field import StepCallback
from ..triplane_field import TriplaneField
from .camera import SOURCE_INTRINSICS, source_camera
from .model import OpenLRM
from .weights import check_model_dir, download_model, load_model

ROUNDING = "floor"
PATCH = 14

__all__ = ["ROUNDING", "check_model_dir", "cut_out", "download_model", "encode", "load_model", "model_input",
           "photo_camera", "photo_canvas", "to_output_frame"]  # fmt: skip


def photo_camera(camera_distance: float) -> SourceCamera:
    """The source camera the model is conditioned on (its focal length, normalised, is fx)."""
    return SourceCamera(camera_distance, SOURCE_INTRINSICS[0])


def model_input(
    model: OpenLRM, cut: CutOut, input_size: int = 0, recenter_object: bool = True, foreground_ratio: float = 0.8
) -> torch.Tensor:
    """The cut-out on white, recentred, resized to ``input_size`` (0: the model's published size)."""
    return prepare.model_input(cut, _input_size(model, input_size), recenter_object, foreground_ratio)


def _input_size(model: OpenLRM, asked: int) -> int:
    """The size asked for (a multiple of the encoder's 14-pixel patch), else the published
    one, which the published inference settings pick by the model's width."""
    if asked:
        if asked % PATCH:
            raise EngineError(
                f"input size must be a multiple of {PATCH} for OpenLRM (or 0 for the model's own), got {asked}"
            )
        return asked
    size = model.config.published_input_size
    if size is None:
        raise EngineError(
            f"this model (transformer_dim {model.config.transformer_dim}) has no published input size: "
            "give the input size"
        )
    return size


def encode(model: OpenLRM, pixels: torch.Tensor, settings: Encoding, step: StepCallback | None = None) -> TriplaneField:
    """The image seen from the source camera at the run's distance -> its triplanes' field."""
    parameter = next(model.parameters())
    camera = source_camera(settings.camera_distance).to(parameter.device, parameter.dtype)
    after_layer = None if step is None else lambda done, total: step(done / total, f"transformer layer {done}/{total}")
    planes = model(pixels.to(parameter.device, parameter.dtype), camera, after_layer=after_layer)
    return TriplaneField(model.decoder, planes)


def to_output_frame(vertices: np.ndarray) -> np.ndarray:
    """OpenLRM's frame is ours already: +Z up, the input view looking from -Y."""
    return vertices
