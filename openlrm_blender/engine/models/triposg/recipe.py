"""How a run uses a TripoSG model: its files, the published image preparation, the sampling
(a step at a time, with the time left), the field of the sampled shape, and the turn from its
frame into ours. It takes no camera and makes no colours: the photo stage fits a camera to
the shape and colours it from the photo."""

from __future__ import annotations

import time

import numpy as np
import torch

from ...errors import EngineError
from ...input.prepare import CutOut
from ..encoding import Encoding
from ..field import StepCallback
from . import image
from .field import LogitField
from .image import cut_out
from .model import TripoSG, to_output_frame
from .sampler import initial_noise, sample
from .weights import check_model_dir, download_model, load_model
from .work import duration

ROUNDING = "round"

__all__ = ["ROUNDING", "check_model_dir", "cut_out", "download_model", "encode", "load_model", "model_input",
           "photo_camera", "photo_canvas", "to_output_frame"]  # fmt: skip


def model_input(
    model: TripoSG,
    cut: CutOut,
    input_size: int = 0,
    recenter_object: bool = True,
    foreground_ratio: float | None = None,
) -> torch.Tensor:
    """The published framing (the object cropped with a 10% margin, whatever recentring and
    foreground ratio say: the network was trained on it) and the feature extractor's crop (so
    another input size is refused)."""
    preprocessor = model.config.preprocessor
    if input_size and input_size != preprocessor.crop_size:
        raise EngineError(f"TripoSG takes {preprocessor.crop_size} px images (its feature extractor's crop), not "
                          f"{input_size}: give 0")  # fmt: skip
    return image.model_input(cut, preprocessor)


def photo_canvas(cut: CutOut, recenter_object: bool = True, foreground_ratio: float | None = None) -> np.ndarray:
    """The published framing at the image's own resolution, the mask as alpha."""
    return image.photo_canvas(cut)


def photo_camera(camera_distance: float) -> None:
    """None: TripoSG's input is the cropped object, with no camera; the photo stage fits one."""
    return None


def encode(model: TripoSG, pixels: torch.Tensor, settings: Encoding, step: StepCallback | None = None) -> LogitField:
    """The image's tokens, then the flow from the seed's noise, a step at a time; the shape's
    field. Progress says each step, and from the second on the time left."""
    tokens = model.image_tokens(pixels)
    noise = initial_noise(settings.seed, settings.tokens, model.config.transformer.in_channels)
    started = time.perf_counter()

    def after_step(done: int, total: int) -> None:
        if step is None:
            return
        per_step = (time.perf_counter() - started) / done
        left = f", about {duration(per_step * (total - done))} left" if done < total else ""
        step(done / total, f"step {done} of {total}{left}")

    latents = sample(
        model.transformer, tokens, noise, settings.steps, settings.guidance, model.config.scheduler, after_step
    )
    return LogitField(model.vae, latents)
