"""TripoSG's field on its published grid: the shape decoder's logit, positive inside, meshed at 0.

The published grid (its non-flash path) has R points per axis from ``linspace(-1.005,
1.005, R)`` computed in float16, its logits rounded to float16; a vertex at grid index v
lies at v / R * 2.01 - 1.005 (divided by R, not R - 1: the mesh shrinks by (R - 1) / R
toward the minimum corner). All three quirks are kept, so the mesh is the published one.
The axis is made on the CPU whatever the device, so every device queries the same points.

Each value costs a cross-attention over the latent tokens, so the coarse-to-fine evaluation
may first look at the field from far (``coarsest_spacing``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..field import Field, GridValues
from .vae import ShapeDecoder

BOUND = 1.005
POINTS_PER_CHUNK = 50_000  # the published decoder's chunks of points
GPU_POINTS_PER_CHUNK = 400_000
FIRST_LOOK_CELLS = 32  # the coarsest lattice has at least this many cells per axis


def grid_axis(resolution: int, size: int) -> torch.Tensor:
    """The published axis (float16 linspace, as float32), continued past its end at its last
    spacing up to ``size`` points (those points never reach the mesh)."""
    axis = torch.linspace(-BOUND, BOUND, resolution, dtype=torch.float16).float()
    spacing = float(axis[-1] - axis[-2])
    beyond = float(axis[-1]) + spacing * torch.arange(1, size - resolution + 1, dtype=torch.float32)
    return torch.cat([axis, beyond])[:size]


class LogitGridValues(GridValues):
    def __init__(self, field: LogitField, axis: torch.Tensor) -> None:
        self.field, self.device = field, field.keys.device
        self.axis = axis.to(self.device)  # the CPU's values, copied
        self.points_per_chunk = POINTS_PER_CHUNK if field.keys.device.type == "cpu" else GPU_POINTS_PER_CHUNK

    def values(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        i, j, k = torch.broadcast_tensors(i, j, k)
        points = torch.stack([self.axis[i], self.axis[j], self.axis[k]], dim=-1)
        return self.field.logits(points.reshape(-1, 3)).reshape(i.shape)


class LogitField(Field):
    """One shape's logits: the latent tokens' keys and values computed once, then queried."""

    cell_size = 2  # every value is dear: the band of exact values beside the surface kept thin

    def __init__(self, decoder: ShapeDecoder, latents: torch.Tensor) -> None:
        dtype = next(decoder.parameters()).dtype
        self.decoder, self.latents = decoder, latents
        self.keys, self.values = decoder.latent_tokens(latents.to(dtype))

    @torch.no_grad()
    def logits(self, points: torch.Tensor) -> torch.Tensor:
        """(M, 3) points -> (M,) logits rounded to float16 as published, as float32 on the model's device."""
        out = torch.empty(len(points), dtype=torch.float32, device=self.keys.device)
        step = POINTS_PER_CHUNK if self.keys.device.type == "cpu" else GPU_POINTS_PER_CHUNK
        for start in range(0, len(points), step):
            chunk = points[start : start + step].to(self.keys.device)[None]
            out[start : start + len(chunk[0])] = self.decoder.logits(chunk, self.keys, self.values)[0].half().float()
        return out

    def coarsest_spacing(self, cells: int) -> int:
        spacing = 1
        while cells // (2 * spacing) >= FIRST_LOOK_CELLS:
            spacing *= 2
        return spacing

    def on_grid(self, resolution: int, size: int) -> LogitGridValues:
        return LogitGridValues(self, grid_axis(resolution, size))

    def positions(self, resolution: int, indices: np.ndarray) -> np.ndarray:
        return (indices / resolution * (2 * BOUND) - BOUND).astype(np.float32)
