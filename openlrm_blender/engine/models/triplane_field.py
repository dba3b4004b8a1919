"""A triplane model's field: the decoder's density at points of the planes, colours too.

The grid is the published one: G points per axis over the field's box ([-1, 1] scaled by
the decoder's radius), indexed [i, j, k] = (x_i, y_j, z_k). Two ways to fill it:

- ``dense_grid``: the published recipe, every point through the sampler and the whole
  decoder. Kept as the reference and as the ``dense`` option.
- ``on_grid``: the same values up to rounding, for a small share of the work. The decoder's
  first layer is linear, so it is applied to the planes once. Plane 0 depends only on
  (i, j), plane 1 on (i, k) and plane 2 on (j, k): each projected plane is resampled once
  into a table over the grid, and the first layer's output at (i, j, k) is a sum of three
  table rows. A cube of grid points is the sum of three broadcast tiles of the tables.
"""

from __future__ import annotations

import numpy as np
import torch

from .field import Field, GridValues, StepCallback
from .triplane import TriplaneDecoder, bilinear

POINTS_PER_CHUNK = 1 << 18  # the dense recipe's and the colours' chunks of points
TABLE_POINTS_PER_CHUNK = 1 << 14  # hidden vectors of 64 floats: 4 MB, kept in cache
GPU_CHUNK_SCALE = 8  # a GPU needs more work per launch to be busy, and each chunk's trip to the host waits for it


def chunk_points(device: torch.device, on_the_cpu: int) -> int:
    """Points per chunk: on the CPU what stays in its caches, on a GPU several times that."""
    return on_the_cpu if device.type == "cpu" else on_the_cpu * GPU_CHUNK_SCALE


def grid_axis(resolution: int, size: int, device: torch.device) -> torch.Tensor:
    """The grid's axis over [-1, 1], continued past 1 at the same spacing up to ``size`` points."""
    axis = torch.linspace(-1.0, 1.0, resolution, device=device)
    beyond = 1.0 + 2.0 / (resolution - 1) * torch.arange(1, size - resolution + 1, device=device)
    return torch.cat([axis, beyond])[:size]


def rows(table: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """``table[first, second]`` of a contiguous table, through one flat ``index_select``:
    a chunk's three tile gathers (256 cells of 4) in 120 us, not the 300 of indexing by the
    two index tensors; OpenLRM's grid at 384 about 45 ms sooner."""
    flat = first * table.shape[1] + second
    return table.flatten(0, 1).index_select(0, flat.reshape(-1)).view(*flat.shape, *table.shape[2:])


class TriplaneGridValues(GridValues):
    def __init__(self, decoder: TriplaneDecoder, planes: torch.Tensor, axis: torch.Tensor) -> None:
        self.decoder, self.device = decoder, planes.device
        self.points_per_chunk = chunk_points(planes.device, TABLE_POINTS_PER_CHUNK)
        projected = decoder.project(planes)[0]  # 3, hidden, H, W
        # Sampling coordinates (width, height) = (first, second) index of the table.
        coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)[None]  # 1, n, n, 2
        # 3, n, n, hidden, each point's vector contiguous: the decoder reads it so
        tables = bilinear(projected, coords.expand(3, -1, -1, -1)).permute(0, 2, 3, 1).contiguous()
        # Each table indexed by its plane's two coordinates in increasing order: [i, j], [i, k], [j, k],
        # its rows in that order in memory (``rows`` reads them through one flat index).
        xy, xz, yz = (
            t if axes[0] < axes[1] else t.transpose(0, 1).contiguous()
            for t, axes in zip(tables, decoder.plane_axes, strict=True)
        )
        self.tables = (xy + decoder.first_layer.bias.to(xy.dtype), xz, yz)
        self._tiles: dict[int, list[torch.Tensor]] = {}

    def density(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder.density_from_raw(self.decoder.decode_hidden(hidden)[..., 0])

    def values(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        xy, xz, yz = self.tables
        i, j, k = torch.broadcast_tensors(*(index.to(xy.device) for index in (i, j, k)))
        return self.density(rows(xy, i, j).add_(rows(xz, i, k)).add_(rows(yz, j, k)))

    def block(self, origins: torch.Tensor, shape: tuple[int, int, int], step: int) -> torch.Tensor:
        """One box (a slab of a lattice): three strided views of the tables, nothing gathered
        (with the tables' contiguous rows, OpenLRM's coarse lattice at 384 in 0.21 s, not
        0.41). Cubes of neighbouring points at a multiple of their side: three tile gathers
        per cube instead of per point (twice as fast). Anything else point by point."""
        if len(origins) == 1:
            starts = [int(start) for start in origins[0]]
            ranges = [
                slice(start, start + step * (size - 1) + 1, step) for start, size in zip(starts, shape, strict=True)
            ]
            xy, xz, yz = (
                table[ranges[a], ranges[b]] for table, (a, b) in zip(self.tables, ((0, 1), (0, 2), (1, 2)), strict=True)
            )
            return self.density(xy[:, :, None] + xz[:, None] + yz[None])[None]
        side = shape[0]
        if step != 1 or shape != (side,) * 3 or bool((origins % side).any()):
            return super().block(origins, shape, step)
        i, j, k = (origins // side).to(self.tables[0].device).T
        xy, xz, yz = self.tiles(side)
        return self.density((rows(xy, i, j)[:, :, :, None] + rows(xz, i, k)[:, :, None]).add_(rows(yz, j, k)[:, None]))

    def tiles(self, side: int) -> list[torch.Tensor]:
        """Each table cut into side x side tiles, (cells, cells, side, side, hidden), copied:
        gathering whole tiles is twice as fast as gathering rows."""
        if side not in self._tiles:
            cells = (len(self.tables[0]) - 1) // side
            shape = (cells, side)
            cut = (
                table[: cells * side, : cells * side].unflatten(0, shape).unflatten(2, shape) for table in self.tables
            )
            self._tiles[side] = [tiles.transpose(1, 2).contiguous() for tiles in cut]
        return self._tiles[side]


class TriplaneField(Field):
    """Density (and colour) of a triplane decoder over one set of planes (N = 1)."""

    def __init__(self, decoder: TriplaneDecoder, planes: torch.Tensor) -> None:
        self.decoder, self.planes = decoder, planes

    def on_grid(self, resolution: int, size: int) -> TriplaneGridValues:
        return TriplaneGridValues(self.decoder, self.planes, grid_axis(resolution, size, self.planes.device))

    @torch.no_grad()
    def dense_grid(self, resolution: int, step: StepCallback) -> np.ndarray:
        """Every point through the sampler and the whole decoder, the published way. Each
        chunk's points are made when it is evaluated: the whole grid's would take 12.9 GB at 1024^3."""
        axis = grid_axis(resolution, resolution, self.planes.device)
        total = resolution**3
        out = torch.empty(total, dtype=torch.float32)
        per_chunk = chunk_points(self.planes.device, POINTS_PER_CHUNK)
        for start in range(0, total, per_chunk):
            index = torch.arange(start, min(start + per_chunk, total), device=self.planes.device)
            chunk = torch.stack(
                [axis[index // resolution**2], axis[index // resolution % resolution], axis[index % resolution]], -1
            )
            sigma, _ = self.decoder.query(self.planes, chunk[None].to(self.planes.dtype) * self.decoder.radius)
            out[start : start + len(index)] = sigma.reshape(-1).cpu()
            step((start + len(index)) / total, "density grid (dense)")
        return out.reshape((resolution,) * 3).numpy()

    def positions(self, resolution: int, indices: np.ndarray) -> np.ndarray:
        return ((indices / (resolution - 1) * 2.0 - 1.0) * self.decoder.radius).astype(np.float32)

    @torch.no_grad()
    def colours(self, points: np.ndarray, step: StepCallback) -> np.ndarray:
        """Colour at each point, queried in chunks from the projected planes."""
        decoder, planes = self.decoder, self.planes
        colours = np.empty_like(points, dtype=np.float32)
        projected = decoder.project(planes)
        per_chunk = chunk_points(planes.device, POINTS_PER_CHUNK)
        for start in range(0, len(points), per_chunk):
            chunk = torch.from_numpy(points[start : start + per_chunk] / np.float32(decoder.radius))
            chunk = chunk.to(planes.device, planes.dtype)[None]
            raw = decoder.decode_hidden(decoder.hidden_from_projected(projected, chunk))
            colours[start : start + len(chunk[0])] = decoder.colour_from_raw(raw[0, :, 1:]).cpu().numpy()
            step((start + len(chunk[0])) / len(points), "vertex colours")
        return colours
