"""How a run uses an OpenLRM model: its files, its input size, the image preparation, the
encoder call with the source camera, and its output (already in our frame, colours
floored to 8 bits as published)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...camera import SourceCamera
from ...errors import EngineError
from ...input import prepare
from ...input.prepare import CutOut
from ...progress import Reporter
from ..recipe import ModelOutput, Prepared, Recipe, Settings
from ..triplane_field import TriplaneField
from . import weights
from .camera import SOURCE_INTRINSICS, source_camera
from .model import OpenLRM

PATCH = 14


class OpenLRMRecipe(Recipe):
    rounding = "floor"

    check_model_dir = staticmethod(weights.check_model_dir)
    download_model = staticmethod(weights.download_model)
    load_model = staticmethod(weights.load_model)
    cut_out = staticmethod(prepare.cut_out)

    def prepare(self, model: OpenLRM, cuts: Sequence[CutOut], settings: Settings, canvas: bool) -> Prepared:
        """The cut-out on white, recentred, resized to the input size (0: the model's published size)."""
        (cut,) = cuts
        size = _input_size(model, settings.input_size)
        pixels = prepare.model_input(cut, size, settings.recenter, settings.foreground_ratio)
        photo = prepare.photo_canvas(cut, settings.recenter, settings.foreground_ratio) if canvas else None
        return Prepared(pixels, photo)

    def make(self, model: OpenLRM, prepared: Prepared, settings: Settings, report: Reporter) -> ModelOutput:
        """The image seen from the source camera at the run's distance -> its triplanes' field."""
        parameter = next(model.parameters())
        camera = source_camera(settings.camera_distance).to(parameter.device, parameter.dtype)
        planes = model(
            prepared.pixels.to(parameter.device, parameter.dtype),
            camera,
            after_layer=lambda done, total: report("encode", done / total, f"transformer layer {done}/{total}"),
        )
        field = TriplaneField(model.decoder, planes)
        # The source camera the model is conditioned on (its focal length, normalised, is fx).
        return ModelOutput(field, field.colours, SourceCamera(settings.camera_distance, SOURCE_INTRINSICS[0]))

    def to_output_frame(self, vertices: np.ndarray) -> np.ndarray:
        """OpenLRM's frame is ours already: +Z up, the input view looking from -Y."""
        return vertices


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


RECIPE = OpenLRMRecipe()
