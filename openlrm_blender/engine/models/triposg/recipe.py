"""How a run uses a TripoSG model: its files, the published image preparation, the sampling
(a step at a time, with the time left), the field of the sampled shape, and the turn from its
frame into ours. It takes no camera and makes no colours: the photo stage fits a camera to
the shape and colours it from the photo."""

from __future__ import annotations

from collections.abc import Sequence

from ...input.prepare import CutOut
from ...progress import Reporter, StepsLeft
from ..recipe import ModelOutput, Prepared, Recipe, Settings
from . import image, weights
from .field import LogitField
from .model import TripoSG, to_output_frame
from .sampler import initial_noise, sample


class TripoSGRecipe(Recipe):
    rounding = "round"
    check_model_dir = staticmethod(weights.check_model_dir)
    download_model = staticmethod(weights.download_model)
    load_model = staticmethod(weights.load_model)
    cut_out = staticmethod(image.cut_out)
    to_output_frame = staticmethod(to_output_frame)

    def prepare(self, model: TripoSG, cuts: Sequence[CutOut], settings: Settings, canvas: bool) -> Prepared:
        """The published framing (the object cropped with a 10% margin: the network was
        trained on it) and the feature extractor's crop; the photo in the same framing at
        the image's own resolution."""
        (cut,) = cuts
        pixels = image.model_input(cut, model.config.preprocessor)
        return Prepared(pixels, image.photo_canvas(cut) if canvas else None)

    def make(self, model: TripoSG, prepared: Prepared, settings: Settings, report: Reporter) -> ModelOutput:
        """The image's tokens, then the flow from the seed's noise, a step at a time, with the
        time left from the second step on; the shape's field."""
        report("encode", 0.0, "image tokens")
        tokens = model.image_tokens(prepared.pixels)
        report("encode", 1.0, "image tokens")
        noise = initial_noise(settings.seed, settings.tokens, model.config.transformer.in_channels)
        steps_left = StepsLeft(settings.steps)
        report("sample", 0.0, steps_left.after(0))
        latents = sample(
            model.transformer, tokens, noise, settings.steps, settings.guidance, model.config.scheduler,
            lambda done: report("sample", done / settings.steps, steps_left.after(done)),
        )  # fmt: skip
        return ModelOutput(LogitField(model.vae, latents))


RECIPE = TripoSGRecipe()
