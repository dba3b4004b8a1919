"""How a run uses TRELLIS: its files (and its image encoder's), the published image
preparation, the two flow stages a step at a time with the time left, and what it makes: a
cube grid for FlexiCubes, coloured by its Gaussians. Its frame is ours already (+Z up); the
photo's view is not tied to an axis, so the photo stage fits a camera to the shape.

It also paints a mesh it did not make: the mesh's voxels take stage 1's place, and its own
points are coloured by the Gaussians of stage 2."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...errors import EmptyMeshError
from ...input.prepare import CutOut
from ...input.voxelise import voxelise
from ...progress import Reporter, StepsLeft
from ..recipe import ColourField, ModelOutput, Prepared, Recipe, Settings
from . import cost, image, weights
from .config import SamplerConfig, TrellisConfig
from .gaussians import Gaussians
from .model import Trellis, latent_noise, seeded_noise


class TrellisRecipe(Recipe):
    rounding = "round"
    check_model_dir = staticmethod(weights.check_model_dir)
    download_model = staticmethod(weights.download_model)
    load_model = staticmethod(weights.load_model)
    cut_out = staticmethod(image.cut_out)

    def published_settings(self, folder: Path) -> dict[str, float]:
        """Both samplers' steps and guidance from the folder's pipeline.json."""
        config = TrellisConfig.load(folder)
        structure, latent = config.structure_sampler, config.latent_sampler
        return {
            "steps": structure.steps,
            "guidance": structure.cfg_strength,
            "latent_steps": latent.steps,
            "latent_guidance": latent.cfg_strength,
        }

    def prepare(self, model: Trellis, cuts: Sequence[CutOut], settings: Settings, canvas: bool) -> Prepared:
        """Each photo framed and normalised as published; the first one's frame for the photo stage."""
        pixels = image.pixel_values([image.prepared_image(cut) for cut in cuts])
        return Prepared(pixels, image.photo_canvas(cuts[0]) if canvas else None)

    def make(self, model: Trellis, prepared: Prepared, settings: Settings, report: Reporter) -> ModelOutput:
        """The image's tokens; stage 1 from the seed's noise to the occupied voxels; stage 2 on
        them; the Gaussians and the mesh decoder's cube grid."""
        cond, negative = _condition(model, prepared, report)
        generator, noise = seeded_noise(settings.seed, model.config)
        steps = _StageSteps(model.config, settings, len(prepared.pixels))
        report("sample", 0.0, steps.words(0))
        coords = model.occupied_voxels(
            cond, negative, noise, settings.steps, settings.guidance, settings.view_mode,
            lambda done: report("sample", steps.fraction(done), steps.words(done)),
        )  # fmt: skip
        if not len(coords):
            raise EmptyMeshError("no surface: TRELLIS's first stage found no occupied voxel (try another seed)")
        steps.voxels_known(coords)
        latent = model.structured_latent(
            cond, negative, coords, latent_noise(generator, len(coords), model.config), settings.latent_steps,
            settings.latent_guidance, settings.view_mode,
            lambda done: report("sample", steps.fraction(settings.steps + done), steps.words(settings.steps + done)),
        )  # fmt: skip
        report("mesh", 0.0, f"decoding {len(coords):,} voxels")
        gaussians = model.gaussians(latent, coords)
        return ModelOutput(model.cube_grid(latent, coords), gaussians.colours, view_turns=True)

    def paint(
        self,
        model: Trellis,
        prepared: Prepared,
        vertices: np.ndarray,
        faces: np.ndarray,
        settings: Settings,
        report: Reporter,
    ) -> ColourField:
        """Stage 2 on the mesh's own voxels (the published variant run, conditioned on the
        photos): colours at any point of the mesh's frame."""
        cond, negative = _condition(model, prepared, report)
        grid = voxelise(vertices, faces, model.config.latent_flow.resolution)
        coords = torch.from_numpy(np.ascontiguousarray(grid.coords)).long()
        generator = torch.Generator("cpu").manual_seed(settings.seed)
        steps = _StageSteps(model.config, settings, len(prepared.pixels), painting=True)
        steps.voxels_known(coords)
        report("sample", 0.0, steps.words(0))
        latent = model.structured_latent(
            cond, negative, coords, latent_noise(generator, len(coords), model.config), settings.latent_steps,
            settings.latent_guidance, settings.view_mode,
            lambda done: report("sample", steps.fraction(done), steps.words(done)),
        )  # fmt: skip
        gaussians: Gaussians = model.gaussians(latent, coords)
        return lambda points, step: gaussians.colours(grid.to_cube(points).astype(np.float32), step)

    def to_output_frame(self, vertices: np.ndarray) -> np.ndarray:
        """TRELLIS's frame is ours: +Z up (its view of the photo is found by the photo stage)."""
        return vertices


def _condition(model: Trellis, prepared: Prepared, report: Reporter) -> tuple[torch.Tensor, torch.Tensor]:
    count = len(prepared.pixels)
    report("encode", 0.0, f"the image's tokens ({count} photos)" if count > 1 else "the image's tokens")
    cond, negative = model.condition(prepared.pixels)
    report("encode", 1.0, "the image's tokens")
    return cond, negative


class _StageSteps:
    """Both stages' steps as one run of steps, each weighted by its arithmetic, for the bar and
    the time left; stage 2's weight is a typical object's until stage 1 has found the voxels."""

    def __init__(self, config: TrellisConfig, settings: Settings, views: int, painting: bool = False) -> None:
        self.config, self.settings, self.views = config, settings, views
        self.first = 0 if painting else settings.steps  # stage 2's first step
        structure = [] if painting else self._stage(config.structure_sampler, settings.steps, settings.guidance,
                                                     cost.structure_call_flop(config.structure_flow).total)  # fmt: skip
        self.left = StepsLeft([*structure, *self._latent(cost.Voxels.typical())])

    def _stage(self, sampler: SamplerConfig, steps: int, guidance: float, per_call: float) -> list[float]:
        return [count * per_call for count in cost.calls(sampler, steps, guidance, self.views, self.settings.view_mode)]

    def _latent(self, voxels: cost.Voxels) -> list[float]:
        per_call = cost.latent_call_flop(self.config.latent_flow, voxels).total
        settings = self.settings
        return self._stage(self.config.latent_sampler, settings.latent_steps, settings.latent_guidance, per_call)

    def voxels_known(self, coords: torch.Tensor) -> None:
        self.left.reweigh(self.first, self._latent(cost.Voxels.typical(len(coords))))

    def fraction(self, done: int) -> float:
        return self.left.fraction(done)

    def words(self, done: int) -> str:
        if self.first and done <= self.first:
            return self.left.after(done, "structure step", 0, self.first)
        return self.left.after(done, "latent step", self.first)


RECIPE = TrellisRecipe()
