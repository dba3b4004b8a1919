"""What a model hands to FlexiCubes (``geometry.flexicubes``): a cube grid over [-0.5, 0.5]^3,
kept sparse.

FlexiCubes is defined on a dense grid of R^3 cubes and (R + 1)^3 lattice points, where
every point has a position and a signed distance and every cube has weights. At the
resolutions models use (R = 256: 17 M points) almost all of that grid holds the defaults, so
a ``CubeGrid`` lists only the points and cubes a model gave values; every other one has
the published dense defaults:

- a point: signed distance 1 (outside), position ``(x, y, z) / R - 0.5`` (not deformed),
  attributes 0;
- a cube: weights 0 (beta, alpha and gamma before FlexiCubes normalises them).

Points and cubes are addressed by flat index, x the slowest axis, z the fastest:
``(x * size + y) * size + z`` with size R + 1 for points and R for cubes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Corner c of a cube lies at offset (c & 1, c >> 1 & 1, c >> 2 & 1): corners numbered x + 2y + 4z.
CUBE_CORNERS = torch.tensor([[c & 1, c >> 1 & 1, c >> 2 & 1] for c in range(8)])


def flat_index(coords: torch.Tensor, size: int) -> torch.Tensor:
    """Int64 flat indices of (..., 3) integer coordinates in a grid of ``size`` per axis."""
    coords = coords.long()
    return (coords[..., 0] * size + coords[..., 1]) * size + coords[..., 2]


def grid_coords(index: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3) int64 coordinates of flat indices in a grid of ``size`` per axis."""
    return torch.stack((index // (size * size), (index // size) % size, index % size), dim=-1)


def lattice_position(coords: torch.Tensor, resolution: int) -> torch.Tensor:
    """Float32 positions of lattice points before deformation, the published way: the
    integer coordinate divided by R, less 0.5."""
    return coords / resolution - 0.5


@dataclass(frozen=True)
class CubeGrid:
    """A sparse FlexiCubes grid. Points and cubes are listed in increasing flat index, each
    at most once; all tensors are on one device."""

    resolution: int  # R: cubes per axis
    vertex_index: torch.Tensor  # (V,) int64 flat indices into the (R + 1)^3 lattice, sorted
    vertex_position: torch.Tensor  # (V, 3) float32, after deformation
    vertex_sdf: torch.Tensor  # (V,) float32 signed distance, negative inside
    vertex_attributes: torch.Tensor | None  # (V, C) float32, raw (FlexiCubes applies a sigmoid), or None
    cube_index: torch.Tensor  # (N,) int64 flat indices into the R^3 cubes, sorted
    beta: torch.Tensor  # (N, 12) float32 raw edge weights
    alpha: torch.Tensor  # (N, 8) float32 raw corner weights
    gamma: torch.Tensor  # (N,) float32 raw quad-split weight

    def __post_init__(self) -> None:
        points, cubes = self.vertex_index.shape[0], self.cube_index.shape[0]
        shapes = {
            "vertex_position": (self.vertex_position, (points, 3)),
            "vertex_sdf": (self.vertex_sdf, (points,)),
            "beta": (self.beta, (cubes, 12)),
            "alpha": (self.alpha, (cubes, 8)),
            "gamma": (self.gamma, (cubes,)),
        }
        if self.vertex_attributes is not None:
            shapes["vertex_attributes"] = (self.vertex_attributes, (points, self.vertex_attributes.shape[-1]))
        for name, (tensor, shape) in shapes.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(f"CubeGrid.{name} has shape {tuple(tensor.shape)}, expected {shape}.")

    @property
    def device(self) -> torch.device:
        return self.vertex_index.device
