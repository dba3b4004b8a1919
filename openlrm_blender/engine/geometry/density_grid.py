"""The density grid marching cubes runs on, filled from the triplanes.

The grid is the published one: G points per axis over the field's box ([-1, 1] scaled by
the decoder's radius; the grid's own coordinates stay in [-1, 1]), indexed [i, j, k] =
(x_i, y_j, z_k). Two ways to fill it:

- ``dense_density_grid``: the published recipe, every point through the sampler and
  the whole decoder. Kept as the reference and as the ``dense`` option.
- ``surface_density_grid`` (the default): the same values up to rounding where the
  surface is, for a small share of the work.

  1. The decoder's first layer is linear, so it is applied to the planes once. Plane 0
     depends only on (i, j), plane 1 on (i, k) and plane 2 on (j, k): each projected
     plane is resampled once into a table over the grid, and the first layer's output
     at (i, j, k) is a sum of three table rows.
  2. The density is evaluated on a coarse grid, every ``BLOCK``-th point. Coarse cells
     whose corners straddle the threshold, or come closer to it than they differ from
     one another, are evaluated exactly, BLOCK^3 points each.
  3. Safety margin: wherever an evaluated cell's points facing a neighbour disagree
     with the side the neighbour was assumed to be on, the neighbour is evaluated too,
     until no evaluated point disagrees. So the band follows the surface wherever it
     goes, and every fine cell the surface crosses is evaluated exactly.

  Other points take a value on their cell's side of the threshold, and the mesh is
  cut from the box of evaluated cells, so marching cubes gives the dense grid's mesh.
  The two can differ only where a piece of surface is smaller than a coarse cell,
  touches no other surface, and lies in a cell whose corners are all far from the
  threshold: a speck or a bubble within BLOCK grid steps that rises steeply out of a
  flat field. Noise-like fields, near the threshold almost everywhere at the coarse
  scale, are evaluated everywhere. ``dense=True`` evaluates every point.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EmptyMeshError
from ..progress import StepCallback
from ..models.triplane import TriplaneDecoder, bilinear

POINTS_PER_CHUNK = 1 << 18  # the dense recipe's and the colours' chunks of points
TABLE_POINTS_PER_CHUNK = 1 << 14  # hidden vectors of 64 floats: 4 MB, kept in cache
GPU_CHUNK_SCALE = 8  # a GPU needs more work per launch to be busy, and each chunk's trip to the host waits for it
BLOCK = 4  # fine grid steps per coarse cell
# A field this much of whose volume is near the threshold at the coarse scale is noise
# with detail finer than a coarse cell (untrained weights): every cell is evaluated.
MAX_NEAR_SHARE = 0.5


@dataclass
class DensityGrid:
    """Density on a box of the G^3 grid that holds the whole surface.

    ``values[a, b, c]`` is grid point ``origin + (a, b, c)``. ``exact_cells`` marks the
    BLOCK^3 cells of the box evaluated exactly (None: every point is exact); the other
    points only say which side of the threshold they are on.
    """

    values: np.ndarray
    origin: tuple[int, int, int]
    resolution: int
    exact_cells: np.ndarray | None = None

    @property
    def exact(self) -> np.ndarray:
        """The exactly evaluated points of ``values``, as a mask of its shape."""
        if self.exact_cells is None:
            return np.ones(self.values.shape, dtype=bool)
        mask = self.exact_cells
        for axis in range(3):
            mask = np.repeat(mask, BLOCK, axis=axis)
        return mask[tuple(slice(0, n) for n in self.values.shape)]

    @property
    def exact_share(self) -> float:
        """Share of the G^3 points evaluated exactly."""
        if self.exact_cells is None:
            return self.values.size / self.resolution**3
        # Points per cell along each axis: BLOCK, fewer in cells cut by the grid's far end.
        sizes = [
            np.clip(n - BLOCK * np.arange(cells), 0, BLOCK)
            for n, cells in zip(self.values.shape, self.exact_cells.shape)
        ]
        return float(np.einsum("abc,a,b,c->", self.exact_cells.astype(np.int64), *sizes)) / self.resolution**3


def no_surface(threshold: float, where: str, low: float, high: float) -> EmptyMeshError:
    """The density stays on one side of the threshold: the advice says which way to move it."""
    way = "higher" if low > threshold else "lower"
    return EmptyMeshError(
        f"no surface: the density never crosses the threshold {threshold:g} on {where} "
        f"(it ranges {low:.3g} to {high:.3g}); try a {way} threshold"
    )


def grid_axis(resolution: int, device: torch.device) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, resolution, device=device)


def chunk_points(device: torch.device, on_the_cpu: int) -> int:
    """Points per chunk: on the CPU what stays in its caches, on a GPU several times that."""
    return on_the_cpu if device.type == "cpu" else on_the_cpu * GPU_CHUNK_SCALE


@torch.no_grad()
def dense_density_grid(
    decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, step: StepCallback
) -> DensityGrid:
    """Density on the G^3 grid the published way (reference; slow). Each chunk's points are
    made when it is evaluated: the whole grid's would take 12.9 GB at 1024^3."""
    axis = grid_axis(resolution, planes.device)
    total = resolution**3
    out = torch.empty(total, dtype=torch.float32)
    per_chunk = chunk_points(planes.device, POINTS_PER_CHUNK)
    for start in range(0, total, per_chunk):
        index = torch.arange(start, min(start + per_chunk, total), device=planes.device)
        chunk = torch.stack([axis[index // resolution**2], axis[index // resolution % resolution], axis[index % resolution]], -1)
        sigma, _ = decoder.query(planes, chunk[None].to(planes.dtype) * decoder.radius)
        out[start : start + len(index)] = sigma.reshape(-1).float().cpu()
        step((start + len(index)) / total, "density grid (dense)")
    return DensityGrid(out.reshape(resolution, resolution, resolution).numpy(), (0, 0, 0), resolution)


def _padded_axis(resolution: int, size: int, device: torch.device) -> torch.Tensor:
    """The grid's axis, continued past 1 at the same spacing up to ``size`` points."""
    spacing = 2.0 / (resolution - 1)
    beyond = 1.0 + spacing * torch.arange(1, size - resolution + 1, device=device)
    return torch.cat([grid_axis(resolution, device), beyond])


def _plane_tables(decoder: TriplaneDecoder, planes: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Projected planes sampled at the axis points (in [-1, 1]): xy[i, j] (plane 0, with the
    first layer's bias added), xz[i, k] (plane 1), yz[j, k] (plane 2)."""
    projected = decoder.project(planes)[0]  # 3, hidden, H, W
    # Sampling coordinates (width, height) = (first, second) index of the table.
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)[None]  # 1, n, n, 2
    tables = bilinear(projected, coords.expand(3, -1, -1, -1)).permute(0, 2, 3, 1)  # 3, n, n, hidden
    # Each table indexed by its plane's two coordinates in increasing order: [i, j], [i, k], [j, k].
    xy, xz, yz = (table if axes[0] < axes[1] else table.transpose(0, 1) for table, axes in zip(tables, decoder.plane_axes))
    return xy + decoder.first_layer.bias.to(xy.dtype), xz, yz


def _density(decoder: TriplaneDecoder, hidden: torch.Tensor) -> torch.Tensor:
    return decoder.density_from_raw(decoder.decode_hidden(hidden)[..., 0]).float().cpu()


@torch.no_grad()
def _table_density(decoder: TriplaneDecoder, tables: tuple[torch.Tensor, ...], step: StepCallback) -> torch.Tensor:
    """Density on every point of the (sub-)grid the tables were sampled for, slab by slab along x."""
    xy, xz, yz = tables
    size = len(xy)
    out = torch.empty((size,) * 3, dtype=torch.float32)
    slabs = max(1, chunk_points(xy.device, TABLE_POINTS_PER_CHUNK) // size**2)
    for start in range(0, size, slabs):
        rows = slice(start, min(start + slabs, size))
        out[rows] = _density(decoder, xy[rows, :, None] + xz[rows, None, :] + yz[None])
        step(rows.stop / size, "density grid")
    return out


class _CellEvaluator:
    """Exact density on the fine points of chosen coarse cells.

    The plane tables are cut into BLOCK x BLOCK tiles, so a cell's BLOCK^3 points are the
    sum of three broadcast tiles: three small gathers per cell instead of per point.
    """

    def __init__(self, decoder: TriplaneDecoder, tables: tuple[torch.Tensor, ...], cells_per_axis: int) -> None:
        size = cells_per_axis * BLOCK
        self.decoder = decoder
        shape = (cells_per_axis, BLOCK)
        cut = (table[:size, :size].unflatten(0, shape).unflatten(2, shape) for table in tables)
        # Each (cells, cells, BLOCK, BLOCK, HIDDEN), copied: gathering whole tiles is twice as fast.
        self.tiles = [tiles.transpose(1, 2).contiguous() for tiles in cut]

    def __call__(self, cells: torch.Tensor) -> torch.Tensor:
        """(M, 3) cell indices -> (M, BLOCK, BLOCK, BLOCK) densities."""
        i, j, k = cells.to(self.tiles[0].device).T
        xy, xz, yz = self.tiles
        hidden = xy[i, j][:, :, :, None] + xz[i, k][:, :, None] + yz[j, k][:, None]
        return _density(self.decoder, hidden)


# The 26 neighbours of a cell, and for each the slice of a cell's points facing it.
NEIGHBOURS = [offset for offset in itertools.product((-1, 0, 1), repeat=3) if any(offset)]
FACING = [tuple(slice(None) if o == 0 else (BLOCK - 1 if o > 0 else 0) for o in offset) for offset in NEIGHBOURS]


def _cells_to_add(
    cells: torch.Tensor, values: torch.Tensor, threshold: float, fill_inside: torch.Tensor, evaluated: torch.Tensor
) -> torch.Tensor:
    """Unevaluated neighbours whose filled side disagrees with the exact points facing them.

    Marching cubes would put a face between such a cell and the evaluated one that the
    dense grid may not have, so the surface leaves the evaluated band there.
    """
    inside = values > threshold
    cells_per_axis = fill_inside.shape[0]
    found = torch.zeros_like(evaluated)
    for offset, facing in zip(NEIGHBOURS, FACING):
        points = inside[(slice(None), *facing)].reshape(len(cells), -1)
        neighbour = cells + torch.tensor(offset)
        valid = ((neighbour >= 0) & (neighbour < cells_per_axis)).all(dim=1)
        neighbour, points = neighbour[valid], points[valid]
        a, b, c = neighbour.T
        disagrees = torch.where(fill_inside[a, b, c], ~points.all(dim=1), points.any(dim=1))
        hit = disagrees & ~evaluated[a, b, c]
        found[a[hit], b[hit], c[hit]] = True
    return found.nonzero()


@torch.no_grad()
def surface_density_grid(
    decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, threshold: float, step: StepCallback
) -> DensityGrid:
    """The part of the G^3 grid that holds the surface: exact near it, one-sided elsewhere."""
    cells_per_axis = -(-resolution // BLOCK)
    axis = _padded_axis(resolution, cells_per_axis * BLOCK + 1, planes.device)
    tables = _plane_tables(decoder, planes, axis)
    coarse = _table_density(decoder, tuple(t[::BLOCK, ::BLOCK] for t in tables), lambda f, m: step(0.2 * f, m))
    n = cells_per_axis
    corners = torch.stack([coarse[a : a + n, b : b + n, c : c + n] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    fill_inside = (corners > threshold).all(dim=0)
    low, high = corners.min(dim=0).values, corners.max(dim=0).values
    # Straddling cells, and cells whose corners come closer to the threshold than they
    # differ from one another: a speck between the corners may cross it there.
    near = torch.maximum(low - threshold, threshold - high) <= high - low
    if near.float().mean() > MAX_NEAR_SHARE:
        near.fill_(True)
    frontier = near.nonzero()
    if len(frontier) == 0:
        raise no_surface(threshold, f"a {n + 1}^3 coarse grid", float(coarse.min()), float(coarse.max()))
    evaluate = _CellEvaluator(decoder, tables, cells_per_axis)
    evaluated = torch.zeros_like(fill_inside)
    cells, values = [], []
    cells_per_chunk = max(1, chunk_points(planes.device, TABLE_POINTS_PER_CHUNK) // BLOCK**3)
    done, progress = 0, 0.0
    while len(frontier):
        evaluated[tuple(frontier.T)] = True
        # Written in place: small results kept between the chunks' large temporaries
        # fragment the heap, and the process grew by a chunk's size per chunk.
        frontier_values = torch.empty((len(frontier),) + (BLOCK,) * 3)
        for start in range(0, len(frontier), cells_per_chunk):
            end = min(start + cells_per_chunk, len(frontier))
            frontier_values[start:end] = evaluate(frontier[start:end])
            done += end - start
            progress = max(progress, done / (done + len(frontier) - end))
            step(0.2 + 0.8 * progress, "density near the surface")
        cells.append(frontier)
        values.append(frontier_values)
        frontier = _cells_to_add(frontier, frontier_values, threshold, fill_inside, evaluated)
    return _assemble(torch.cat(cells), torch.cat(values), fill_inside, resolution, threshold)


def _assemble(
    cells: torch.Tensor, values: torch.Tensor, fill_inside: torch.Tensor, resolution: int, threshold: float
) -> DensityGrid:
    """The evaluated cells' bounding box as a grid, filled off the evaluated cells."""
    low, high = cells.min(dim=0).values, cells.max(dim=0).values + 1
    box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))
    shape = tuple(int(hi - lo) for lo, hi in zip(low, high))
    fill = np.where(fill_inside[box].numpy(), np.float32(threshold + 1.0), np.float32(threshold - 1.0))
    blocks = np.empty((shape[0], BLOCK, shape[1], BLOCK, shape[2], BLOCK), dtype=np.float32)
    blocks[...] = fill[:, None, :, None, :, None]
    a, b, c = (cells - low).numpy().T
    blocks[a, :, b, :, c, :] = values.numpy()
    origin = tuple(int(lo) * BLOCK for lo in low)
    crop = tuple(slice(0, min(n * BLOCK, resolution - o)) for n, o in zip(shape, origin))
    grid = blocks.reshape(tuple(n * BLOCK for n in shape))[crop]
    exact = np.zeros(shape, dtype=bool)
    exact[a, b, c] = True
    return DensityGrid(grid, origin, resolution, exact)
