"""How a run uses an OpenLRM model: its files, its input size, the image preparation, the
encoder call with the source camera, and its output (already in our frame, colours
floored to 8 bits as published)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...errors import EngineError
from ...input.prepare import cut_out, model_input, photo_canvas, prepare_image
from ...camera import SourceCamera
from .camera import SOURCE_INTRINSICS, source_camera
from .model import OpenLRM
from .weights import check_model_dir, download_model, load_model

ROUNDING = "floor"
PATCH = 14

__all__ = ["ROUNDING", "check_model_dir", "cut_out", "download_model", "encode", "input_size", "load_model",
           "model_input", "photo_camera", "photo_canvas", "prepare_image", "to_output_frame"]  # fmt: skip


def photo_camera(camera_distance: float) -> SourceCamera:
    """The source camera the model is conditioned on (its focal length, normalised, is fx)."""
    return SourceCamera(camera_distance, SOURCE_INTRINSICS[0])


def input_size(model: OpenLRM, asked: int) -> int:
    """The size asked for (a multiple of the encoder's 14-pixel patch), else the published
    one, which the published inference settings pick by the model's width."""
    if asked:
        if asked % PATCH:
            raise EngineError(f"input size must be a multiple of {PATCH} for OpenLRM (or 0 for the model's own), got {asked}")
        return asked
    size = model.config.published_input_size
    if size is None:
        raise EngineError(
            f"this model (transformer_dim {model.config.transformer_dim}) has no published input size: "
            "give the input size"
        )
    return size


def encode(
    model: OpenLRM, pixels: torch.Tensor, camera_distance: float, after_layer: Callable[[int, int], None]
) -> torch.Tensor:
    parameter = next(model.parameters())
    camera = source_camera(camera_distance).to(parameter.device, parameter.dtype)
    return model(pixels.to(parameter.device, parameter.dtype), camera, after_layer=after_layer)


def to_output_frame(vertices: np.ndarray) -> np.ndarray:
    """OpenLRM's frame is ours already: +Z up, the input view looking from -Y."""
    return vertices
