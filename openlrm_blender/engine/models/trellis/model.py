"""TRELLIS (image-large): photo(s) -> the image's tokens -> which voxels the object occupies
(stage 1) -> 8 latent channels on each (stage 2) -> Gaussians for its appearance and a cube
grid FlexiCubes meshes. One module per published network, under its role's name.

Seeds: one CPU generator seeded once draws stage 1's noise and right after it stage 2's (the
published ``torch.manual_seed`` then two ``randn``), so a seed is the same object on every
device; a painted mesh, which has no stage 1, draws stage 2's first.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..cube_grid import CubeGrid
from ..dinov2 import Dinov2, Dinov2Config
from .config import TrellisConfig
from .cube_features import cube_grid_from_features
from .decoders import GaussianDecoder, MeshDecoder
from .gaussians import Gaussians
from .image_encoder import image_condition, negative_condition
from .latent_flow import LatentFlow
from .sampler import Guided, sample
from .sparse import Level
from .structure import StructureDecoder, StructureFlow

# Each network's role in pipeline.json, and the module holding it here.
NETWORKS = {
    "sparse_structure_flow_model": "structure_flow",
    "sparse_structure_decoder": "structure_decoder",
    "slat_flow_model": "latent_flow",
    "slat_decoder_gs": "gaussian_decoder",
    "slat_decoder_mesh": "mesh_decoder",
}
StepDone = Callable[[int], None]


class Trellis(nn.Module):
    def __init__(self, config: TrellisConfig, encoder: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = Dinov2(encoder)
        self.structure_flow = StructureFlow(config.structure_flow)
        self.structure_decoder = StructureDecoder(config.structure_decoder)
        self.latent_flow = LatentFlow(config.latent_flow)
        self.gaussian_decoder = GaussianDecoder(config.gaussian_decoder)
        self.mesh_decoder = MeshDecoder(config.mesh_decoder)

    @property
    def device(self) -> torch.device:
        return self.structure_flow.pos_emb.device

    def condition(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised photos (N, 3, 518, 518) of one object -> their tokens (N, 1374, C) and
        the unconditional tokens (1, 1374, C)."""
        cond = image_condition(self.image_encoder, pixels)
        return cond, negative_condition(cond)

    def occupied_voxels(
        self, cond: torch.Tensor, negative: torch.Tensor, noise: torch.Tensor, steps: int, guidance: float,
        mode: str = "stochastic", after_step: StepDone | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Stage 1: (N, 3) int64 voxels of the latent grid, in coordinate order."""
        velocity = Guided(self.structure_flow, cond, negative, self.config.structure_sampler, guidance, mode)
        latent = sample(velocity, noise.to(self.device), steps, after_step)
        logits = self.structure_decoder(latent)
        return torch.argwhere(logits[0, 0] > 0)

    def structured_latent(
        self, cond: torch.Tensor, negative: torch.Tensor, coords: torch.Tensor, noise: torch.Tensor, steps: int,
        guidance: float, mode: str = "stochastic", after_step: StepDone | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Stage 2: (N, 8) latent channels on the voxels, de-normalised."""
        voxels = Level(coords.to(self.device))

        def flow(x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
            return self.latent_flow(x, t, condition, voxels)

        velocity = Guided(flow, cond, negative, self.config.latent_sampler, guidance, mode)
        latent = sample(velocity, noise.to(self.device), steps, after_step)
        std = torch.tensor(self.config.latent_std, device=latent.device)[None]
        mean = torch.tensor(self.config.latent_mean, device=latent.device)[None]
        return latent * std + mean

    def gaussians(self, latent: torch.Tensor, coords: torch.Tensor) -> Gaussians:
        decoder = self.gaussian_decoder
        config = decoder.config
        raw = decoder(latent, coords.to(self.device))
        return Gaussians.decode(
            raw, coords.to(self.device), config.resolution, config.representation_config, decoder.offset_perturbation
        )

    def cube_grid(self, latent: torch.Tensor, coords: torch.Tensor) -> CubeGrid:
        """The mesh decoder's features on cubes at 4x the latent's resolution, as FlexiCubes takes them."""
        cubes, features = self.mesh_decoder(latent, coords.to(self.device))
        return cube_grid_from_features(cubes, features.float(), self.mesh_decoder.config.resolution * 4)


def seeded_noise(seed: int, config: TrellisConfig) -> tuple[torch.Generator, torch.Tensor]:
    """Stage 1's noise from ``seed``'s CPU generator, and the generator to draw stage 2's from next."""
    generator = torch.Generator("cpu").manual_seed(seed)
    flow = config.structure_flow
    noise = torch.randn((1, flow.in_channels, *(flow.resolution,) * 3), generator=generator)
    return generator, noise


def latent_noise(generator: torch.Generator, voxels: int, config: TrellisConfig) -> torch.Tensor:
    return torch.randn((voxels, config.latent_flow.in_channels), generator=generator)
