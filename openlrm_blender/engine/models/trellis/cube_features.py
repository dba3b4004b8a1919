"""TRELLIS's mesh decoder output read as a FlexiCubes grid (the published
``SparseFeatures2Mesh``, before it calls FlexiCubes).

The decoder gives each occupied cube of the R^3 grid one feature row, laid out in this order:
8 corner signed distances, 8 x 3 corner deformations, 21 cube weights (beta 12, alpha 8,
gamma 1), then, when the model makes colours, 8 x 6 corner attributes (colour and normal);
corners are numbered x + 2y + 4z (``CUBE_CORNERS``). Every signed distance is first biased by
-1/R (the published ``sdf_bias``); a lattice point then takes the mean of what the occupied
cubes sharing it say (the published scatter mean: on the CPU summed in cube order, then corner
order, so the bits match too) and is deformed by at most half a cube.
"""

from __future__ import annotations

import torch

from ..cube_grid import CUBE_CORNERS, CubeGrid, flat_index, grid_coords, lattice_position

CORNERS = 8
WEIGHTS = 21
ATTRIBUTES = 6
CHANNELS_PLAIN = CORNERS + CORNERS * 3 + WEIGHTS
CHANNELS_COLOURED = CHANNELS_PLAIN + CORNERS * ATTRIBUTES


def cube_grid_from_features(coords: torch.Tensor, features: torch.Tensor, resolution: int) -> CubeGrid:
    """The grid of ``features`` (N, 53) or (N, 101 with colours) on occupied cubes ``coords``
    (N, 3) integer (x, y, z) of a grid of ``resolution`` cubes per axis, each cube listed once."""
    channels = features.shape[-1]
    if channels not in (CHANNELS_PLAIN, CHANNELS_COLOURED):
        raise ValueError(f"mesh features have {channels} channels, expected {CHANNELS_PLAIN} or {CHANNELS_COLOURED}")
    cubes = features.shape[0]
    sdf = features[:, :CORNERS].reshape(cubes, CORNERS, 1) + (-1.0 / resolution)
    deform = features[:, CORNERS : CORNERS * 4].reshape(cubes, CORNERS, 3)
    weights = features[:, CORNERS * 4 : CHANNELS_PLAIN]
    per_corner = [sdf, deform]
    if channels == CHANNELS_COLOURED:
        per_corner.append(features[:, CHANNELS_PLAIN:].reshape(cubes, CORNERS, ATTRIBUTES))
    per_corner = torch.cat(per_corner, dim=-1)

    corner_coords = coords.long()[:, None, :] + CUBE_CORNERS.to(coords.device)
    vertex_index, corner_vertex = torch.unique(flat_index(corner_coords, resolution + 1), return_inverse=True)
    values = per_corner.shape[-1]
    means = torch.zeros(vertex_index.shape[0], values, dtype=per_corner.dtype, device=per_corner.device)
    means = means.scatter_reduce(
        0,
        corner_vertex.reshape(-1, 1).expand(-1, values),
        per_corner.reshape(-1, values),
        reduce="mean",
        include_self=False,
    )
    offset = (1 - 1e-8) / (resolution * 2) * torch.tanh(means[:, 1:4])
    position = lattice_position(grid_coords(vertex_index, resolution + 1), resolution) + offset

    cube_index, order = torch.sort(flat_index(coords, resolution))
    weights = weights[order]
    return CubeGrid(
        resolution=resolution,
        vertex_index=vertex_index,
        vertex_position=position,
        vertex_sdf=means[:, 0].contiguous(),
        vertex_attributes=means[:, 4:].contiguous() if channels == CHANNELS_COLOURED else None,
        cube_index=cube_index,
        beta=weights[:, :12].contiguous(),
        alpha=weights[:, 12:20].contiguous(),
        gamma=weights[:, 20].contiguous(),
    )
