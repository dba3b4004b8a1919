"""How a run uses a TripoSR model: its files, its input size, the published image
preparation, the encoder call (no camera), the turn from its frame into ours, and colours
rounded to 8 bits as its export does."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...camera import SourceCamera
from ...errors import EngineError
from ...input.prepare import CutOut
from ...progress import Reporter
from ..recipe import ModelOutput, Prepared, Recipe, Settings
from ..triplane_field import TriplaneField
from . import image, weights
from .model import TripoSR, to_output_frame

# Its renderer's azimuth-0 camera: 1.9 from the centre, a vertical field of view of 40 degrees.
CAMERA_DISTANCE = 1.9
FOVY_DEGREES = 40.0


class TripoSRRecipe(Recipe):
    rounding = "round"
    check_model_dir = staticmethod(weights.check_model_dir)
    download_model = staticmethod(weights.download_model)
    load_model = staticmethod(weights.load_model)
    cut_out = staticmethod(image.cut_out)
    to_output_frame = staticmethod(to_output_frame)

    def prepare(self, model: TripoSR, cuts: Sequence[CutOut], settings: Settings, canvas: bool) -> Prepared:
        """The published preparation at the input size (0: the model's ``cond_image_size``)."""
        (cut,) = cuts
        size = _input_size(model, settings.input_size)
        pixels = image.model_input(cut, size, settings.recenter, settings.foreground_ratio)
        photo = image.photo_canvas(cut, settings.recenter, settings.foreground_ratio) if canvas else None
        return Prepared(pixels, photo)

    def make(self, model: TripoSR, prepared: Prepared, settings: Settings, report: Reporter) -> ModelOutput:
        """The image -> its triplanes' field, seen by its renderer's azimuth-0 camera (the
        model takes no camera)."""
        parameter = next(model.parameters())
        planes = model(
            prepared.pixels.to(parameter.device, parameter.dtype),
            after_layer=lambda done, total: report("encode", done / total, f"transformer layer {done}/{total}"),
        )
        field = TriplaneField(model.decoder, planes)
        camera = SourceCamera(CAMERA_DISTANCE, 0.5 / math.tan(math.radians(FOVY_DEGREES / 2)))
        return ModelOutput(field, field.colours, camera)


def _input_size(model: TripoSR, asked: int) -> int:
    """The size asked for (a multiple of the ViT's patch), else the model's ``cond_image_size``."""
    patch = model.config.vit.patch_size
    if asked and asked % patch:
        raise EngineError(
            f"input size must be a multiple of {patch} for TripoSR (or 0 for the model's own), got {asked}"
        )
    return asked or model.config.cond_image_size


RECIPE = TripoSRRecipe()
