"""What a model makes of one image: a field of numbers over space, the surface where it crosses
a level (inside above it), and for some models a colour at any point. The geometry stage
meshes any field; each family says how its field is evaluated.

The field is evaluated on a grid of ``resolution`` points per axis, addressed by index
(i, j, k) = (x, y, z), through a ``GridValues`` for that resolution: a family's published
grid (where its points lie, how its values are rounded) lives with the family. Indices past
the grid's far end continue its spacing (the coarse-to-fine evaluation reads a little
beyond it; those values never reach the mesh).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from ..progress import StepCallback

FIRST_LOOK_STEPS = 4  # grid steps between the points of the coarse-to-fine evaluation's first lattice


class GridValues(ABC):
    """The field's values at the points of one grid."""

    points_per_chunk: int  # how many points one call should take (a CPU's caches, a GPU's launches)
    device: torch.device = torch.device("cpu")  # where the values are computed and returned

    @abstractmethod
    def values(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Float32 values on ``device`` at grid points (i, j, k): int64 index tensors on
        ``device`` that broadcast against each other, the result of their broadcast shape."""

    def block(self, origins: torch.Tensor, shape: tuple[int, int, int], step: int) -> torch.Tensor:
        """(M, a, b, c): the values at origin + step * (p, q, r) for each of ``origins`` (M, 3),
        p < a, q < b, r < c."""
        i, j, k = (
            origins[:, axis, None, None, None]
            + step * torch.arange(size, device=origins.device).view(shape_of(axis, size))
            for axis, size in enumerate(shape)
        )
        return self.values(i, j, k)


def shape_of(axis: int, size: int) -> tuple[int, ...]:
    """(1, size, 1, 1), (1, 1, size, 1) or (1, 1, 1, size): an axis's offsets, to broadcast."""
    shape = [1, 1, 1, 1]
    shape[axis + 1] = size
    return tuple(shape)


class Field(ABC):
    """One image's field, as a model family makes it."""

    # Grid steps per side of the cells the coarse-to-fine evaluation evaluates exactly: larger
    # cells cost less bookkeeping per value, smaller ones fewer values beside the surface.
    cell_size: int = 4

    def coarsest_spacing(self, cells: int) -> int:
        """The widest spacing (a power of 2, in finest cells) the coarse-to-fine evaluation may
        first look at the field with, on a grid of ``cells`` finest cells per axis: every
        ``FIRST_LOOK_STEPS`` grid steps for a field whose values are cheap (the specks it may
        miss no larger whatever the cell size); from further away where every value is dear."""
        return max(1, FIRST_LOOK_STEPS // self.cell_size)

    @abstractmethod
    def on_grid(self, resolution: int, size: int) -> GridValues:
        """Values on the ``resolution``^3 grid, readable for indices below ``size``."""

    def dense_grid(self, resolution: int, step: StepCallback) -> np.ndarray:
        """(R, R, R) float32: every grid point's value, the family's published way."""
        grid = self.on_grid(resolution, resolution)
        values = np.empty((resolution,) * 3, dtype=np.float32)
        slabs = max(1, grid.points_per_chunk // resolution**2)
        for start in range(0, resolution, slabs):
            rows = min(slabs, resolution - start)
            origin = torch.tensor([[start, 0, 0]], device=grid.device)
            values[start : start + rows] = grid.block(origin, (rows, resolution, resolution), 1)[0].cpu().numpy()
            step((start + rows) / resolution, "field (dense)")
        return values

    @abstractmethod
    def positions(self, resolution: int, indices: np.ndarray) -> np.ndarray:
        """(V, 3) float32 points in the model's frame of (V, 3) fractional grid indices (the
        marching cubes' vertices)."""

    def colours(self, points: np.ndarray, step: StepCallback) -> np.ndarray | None:
        """(V, 3) sRGB in [0, 1] at points of the model's frame; None: the model makes no colours."""
        return None
