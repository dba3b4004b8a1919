"""The grid marching cubes runs on, filled from a model's field (``models.field``).

Two ways to fill it:

- ``dense_density_grid``: every point, the family's published way. Kept as the reference
  and as the ``dense`` option.
- ``surface_density_grid`` (the default): the same values where the surface is, for a small
  share of the work.

  1. The field is looked at on a coarse lattice, every ``block * spacing``-th point (the
     field's cell size and the spacing it allows: every 4 steps in cells of 4 for the
     triplane families' MLPs; TripoSG's transformer, every value dear, cells of 2 from
     further away). Coarse cells whose corners straddle the level, or come closer to it
     than they differ from one another, are split in eight, their lattice evaluated at half
     the spacing, and so on down to cells of ``block`` grid steps; a cell not split keeps
     its corners' side for all it holds.
  2. The cells of ``block`` steps whose corners straddle the level are evaluated exactly,
     block^3 points each, and so are near ones more than two cells from any of those. (The
     near cells closer to them, the band either side of a smooth surface, are left to the
     margin: they were two thirds of the cells.)
  3. Safety margin: wherever an evaluated cell's points facing a neighbour disagree with
     the side that neighbour was assumed to be on, the neighbour is evaluated too, until
     no evaluated point disagrees. So the band follows the surface wherever it goes, and
     every fine cell the surface crosses is evaluated exactly.

  Other points take a value on their cell's side of the level, and the mesh is cut from
  the box of evaluated cells, so marching cubes gives the dense grid's mesh. The two can
  differ only for a piece of surface that touches no other surface and lies in a coarse
  cell whose corners are all far from the level (a speck or a bubble rising steeply out of a
  flat field), or encloses no point of the lattice of ``block`` steps within two cells of
  the surface (a speck beside it). Noise-like fields, near the level almost everywhere at a
  coarse scale, are evaluated everywhere.
  ``dense=True`` evaluates every point.

The grid and its bookkeeping live on the field's device (``GridValues.device``): on a GPU the
values never leave it, and each level of the coarse-to-fine evaluation waits for the device
only where the next step's size depends on what it found (the cells to split, the frontier).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EmptyMeshError
from ..models.field import Field, GridValues
from ..progress import StepCallback

# A field this much of whose volume is near the threshold at the coarse scale is noise
# with detail finer than a coarse cell (untrained weights): every cell is evaluated.
MAX_NEAR_SHARE = 0.5


@dataclass
class DensityGrid:
    """Density on a box of the G^3 grid that holds the whole surface.

    ``values[a, b, c]`` is grid point ``origin + (a, b, c)``: a tensor on the field's device
    (the surface grid), or an array (the dense grid, the published way, on the host).
    ``exact_cells`` marks the block^3 cells of the box evaluated exactly (None: every point
    is exact); the other points only say which side of the threshold they are on.
    """

    values: np.ndarray | torch.Tensor
    origin: tuple[int, int, int]
    resolution: int
    exact_cells: torch.Tensor | None = None
    block: int = 4  # grid steps per cell of ``exact_cells``
    queries: int = 0  # the field's values computed to make it (the dense grid's: every point)

    @property
    def exact(self) -> np.ndarray | torch.Tensor:
        """The exactly evaluated points of ``values``, as a mask of its shape and kind."""
        if self.exact_cells is None:
            return np.ones(self.values.shape, dtype=bool)
        mask = self.exact_cells
        for axis in range(3):
            mask = mask.repeat_interleave(self.block, dim=axis)
        return mask[tuple(slice(0, n) for n in self.values.shape)]

    @property
    def exact_share(self) -> float:
        """Share of the G^3 points evaluated exactly."""
        if self.exact_cells is None:
            return math.prod(self.values.shape) / self.resolution**3
        # Points per cell along each axis: block, fewer in cells cut by the grid's far end.
        sizes = [
            (n - self.block * torch.arange(cells, device=self.exact_cells.device)).clamp(0, self.block).double()
            for n, cells in zip(self.values.shape, self.exact_cells.shape, strict=True)
        ]
        return float(torch.einsum("abc,a,b,c->", self.exact_cells.double(), *sizes)) / self.resolution**3


def no_surface(threshold: float, where: str, low: float, high: float) -> EmptyMeshError:
    """The density stays on one side of the threshold: the advice says which way to move it."""
    way = "higher" if low > threshold else "lower"
    return EmptyMeshError(
        f"no surface: the density never crosses the threshold {threshold:g} on {where} "
        f"(it ranges {low:.3g} to {high:.3g}); try a {way} threshold"
    )


def dense_density_grid(field: Field, resolution: int, step: StepCallback) -> DensityGrid:
    """Every point's value, the published way (reference; slow)."""
    return DensityGrid(field.dense_grid(resolution, step), (0, 0, 0), resolution, queries=resolution**3)


def _near(corners: torch.Tensor, threshold: float, volume: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per cell (corners stacked first): whether all its corners are inside, whether it is
    near, and whether it is crossed. Near: its corners straddle the threshold, or come closer
    to it than they differ from one another (a speck between the corners may cross it
    there); crossed: they straddle it. A field near the threshold in more than
    ``MAX_NEAR_SHARE`` of the ``volume``'s cells of this size is noise finer than them: all
    are near and taken as crossed. (The share is of the whole volume, not of the cells looked
    at: a band round a surface is most of the children of the cells it crosses.) Decided on
    the device, without waiting for it."""
    low, high = corners.min(dim=0).values, corners.max(dim=0).values
    near = torch.maximum(low - threshold, threshold - high) <= high - low
    crossed = (low <= threshold) & (high > threshold)
    noise = near.sum() > MAX_NEAR_SHARE * volume
    return (corners > threshold).all(dim=0), near | noise, crossed | noise


def _band(near: torch.Tensor, crossed: torch.Tensor) -> torch.Tensor:
    """The finest cells to evaluate: the crossed ones, and near ones more than two cells from
    any. Near cells closer to a crossed one are, in a smooth field, the band either side of
    its surface (within about 1.7 cells of it): the margin follows any surface out of the
    crossed cells into them, and they were two thirds of the cells evaluated. A near cell
    away from every crossed one may hold a speck apart from any surface."""
    return crossed | (near & ~_dilate(crossed, 2))


def _dilate(mask: torch.Tensor, reach: int) -> torch.Tensor:
    """The cells within ``reach`` cells of a marked one along every axis (a cube round each).
    Grown one axis at a time by shifted ors: 0.5 ms for 96^3 cells, where a 5^3 max-pool of
    the same mask took 82 ms and 1.7 s for 256^3 (TripoSG's cells of 2 at grid 512)."""
    for axis in range(3):
        grown, length = mask.clone(), mask.shape[axis]
        for shift in range(1, min(reach, length - 1) + 1):
            grown.narrow(axis, shift, length - shift).logical_or_(mask.narrow(axis, 0, length - shift))
            grown.narrow(axis, 0, length - shift).logical_or_(mask.narrow(axis, shift, length - shift))
        mask = grown
    return mask


def _corners(lattice: torch.Tensor) -> torch.Tensor:
    """(8, n, n, n): the eight corners of each cell of an (n + 1)^3 lattice."""
    n = lattice.shape[0] - 1
    return torch.stack([lattice[a : a + n, b : b + n, c : c + n] for a in (0, 1) for b in (0, 1) for c in (0, 1)])


class _Counter:
    """Values asked of the field, counted."""

    def __init__(self, grid: GridValues) -> None:
        self.grid, self.queries, self.device = grid, 0, grid.device

    def block(self, origins: torch.Tensor, shape: tuple[int, int, int], step: int) -> torch.Tensor:
        self.queries += len(origins) * shape[0] * shape[1] * shape[2]
        return self.grid.block(origins, shape, step)

    def points(self, indices: torch.Tensor) -> torch.Tensor:
        """Values at (M, 3) grid indices, a chunk at a time."""
        self.queries += len(indices)
        per_chunk = self.grid.points_per_chunk
        return (
            torch.cat([self.grid.values(*chunk.T) for chunk in indices.split(per_chunk)])
            if len(indices)
            else torch.empty(0, device=self.device)
        )


def _coarse_to_fine(
    grid: _Counter, cells: int, block: int, spacing: int, threshold: float, step: StepCallback
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each cell of ``block`` grid steps (``cells`` per axis): whether it is inside, and
    whether to evaluate it exactly (``_band``); and the first lattice's values. The lattice
    starts every ``block * spacing`` grid steps and halves its spacing inside the near cells only."""
    device = grid.device
    top = -(-cells // spacing)
    size, stride = top + 1, block * spacing
    first = torch.empty((size,) * 3, device=device)
    slabs = max(1, grid.grid.points_per_chunk // size**2)
    for start in range(0, size, slabs):
        rows = min(slabs, size - start)
        origin = torch.tensor([[start * stride, 0, 0]], device=device)
        first[start : start + rows] = grid.block(origin, (rows, size, size), stride)[0]
        step((start + rows) / size, "the field, coarsely")
    lattice = first
    inside, near, crossed = _near(_corners(lattice), threshold, (size - 1) ** 3)
    offsets = torch.tensor(list(itertools.product((0, 1), repeat=3)), device=device)  # a cell's children, or corners
    # A cell's 3^3 points at half the spacing less its corners, known already: those with an odd coordinate.
    new_points = torch.tensor([p for p in itertools.product((0, 1, 2), repeat=3) if 1 in p], device=device)
    while spacing > 1:
        spacing //= 2
        stride = block * spacing
        finer = torch.full((2 * len(near) + 1,) * 3, float("nan"), device=device)
        finer[::2, ::2, ::2] = lattice
        parents = near.nonzero()
        # Each near parent's new points, once each.
        wanted = (parents[:, None] * 2 + new_points).reshape(-1, 3)
        side = len(finer)
        flat = torch.unique(wanted[:, 0] * side**2 + wanted[:, 1] * side + wanted[:, 2])
        wanted = torch.stack([flat // side**2, flat // side % side, flat % side], dim=1)
        finer[tuple(wanted.T)] = grid.points(wanted * stride)
        lattice = finer
        children = (parents[:, None] * 2 + offsets).reshape(-1, 3)
        corners = torch.stack([lattice[tuple((children + corner).T)] for corner in offsets])
        inside = inside.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
        near, crossed = torch.zeros_like(inside), torch.zeros_like(inside)
        cell = tuple(children.T)
        inside[cell], near[cell], crossed[cell] = _near(corners, threshold, inside.numel())
    finest = (slice(0, cells),) * 3
    return inside[finest], _band(near, crossed)[finest], first


# The 26 neighbours of a cell.
NEIGHBOURS = [offset for offset in itertools.product((-1, 0, 1), repeat=3) if any(offset)]


def _cells_to_add(
    cells: torch.Tensor, values: torch.Tensor, threshold: float, fill_inside: torch.Tensor, evaluated: torch.Tensor
) -> torch.Tensor:
    """Unevaluated neighbours whose filled side disagrees with the exact points facing them.

    Marching cubes would put a face between such a cell and the evaluated one that the
    dense grid may not have, so the surface leaves the evaluated band there. Marked through
    clamped indices (a neighbour past the grid's edge marks nothing), so the 26 neighbours
    are looked at without waiting for the device.
    """
    inside = values > threshold
    cells_per_axis, last = fill_inside.shape[0], values.shape[-1] - 1
    found = torch.zeros(fill_inside.numel(), dtype=torch.int32, device=cells.device)
    for offset in NEIGHBOURS:
        facing = tuple(slice(None) if o == 0 else (last if o > 0 else 0) for o in offset)  # the points facing it
        points = inside[(slice(None), *facing)].reshape(len(cells), -1)
        neighbour = cells + torch.tensor(offset, device=cells.device)
        valid = ((neighbour >= 0) & (neighbour < cells_per_axis)).all(dim=1)
        a, b, c = neighbour.clamp(0, cells_per_axis - 1).T
        disagrees = torch.where(fill_inside[a, b, c], ~points.all(dim=1), points.any(dim=1))
        hit = disagrees & ~evaluated[a, b, c] & valid
        found.index_add_(0, (a * cells_per_axis + b) * cells_per_axis + c, hit.int())
    return (found.view(fill_inside.shape) > 0).nonzero()


@torch.no_grad()
def surface_density_grid(field: Field, resolution: int, threshold: float, step: StepCallback) -> DensityGrid:
    """The part of the G^3 grid that holds the surface: exact near it, one-sided elsewhere."""
    block = field.cell_size
    cells_per_axis = -(-resolution // block)
    spacing = field.coarsest_spacing(cells_per_axis)
    top = -(-cells_per_axis // spacing)
    grid = _Counter(field.on_grid(resolution, top * spacing * block + 1))
    coarse_step = lambda fraction, message: step(0.2 * fraction, message)  # noqa: E731
    fill_inside, near, first = _coarse_to_fine(grid, cells_per_axis, block, spacing, threshold, coarse_step)
    frontier = near.nonzero()
    if len(frontier) == 0:
        where = f"a {top + 1}^3 coarse grid"
        raise no_surface(threshold, where, float(first.min()), float(first.max()))
    evaluated = torch.zeros_like(fill_inside)
    cells, values = [], []
    cells_per_chunk = max(1, grid.grid.points_per_chunk // block**3)
    done, progress = 0, 0.0
    while len(frontier):
        evaluated[tuple(frontier.T)] = True
        # Written in place: small results kept between the chunks' large temporaries
        # fragment the heap, and the process grew by a chunk's size per chunk.
        frontier_values = torch.empty((len(frontier),) + (block,) * 3, device=grid.device)
        for start in range(0, len(frontier), cells_per_chunk):
            end = min(start + cells_per_chunk, len(frontier))
            frontier_values[start:end] = grid.block(frontier[start:end] * block, (block,) * 3, 1)
            done += end - start
            progress = max(progress, done / (done + len(frontier) - end))
            step(0.2 + 0.8 * progress, "density near the surface")
        cells.append(frontier)
        values.append(frontier_values)
        frontier = _cells_to_add(frontier, frontier_values, threshold, fill_inside, evaluated)
    found = _assemble(torch.cat(cells), torch.cat(values), fill_inside, resolution, threshold, block)
    found.queries = grid.queries
    return found


def _assemble(
    cells: torch.Tensor, values: torch.Tensor, fill_inside: torch.Tensor, resolution: int, threshold: float, block: int
) -> DensityGrid:
    """The evaluated cells' bounding box as a grid, filled off the evaluated cells."""
    low, last = cells.min(dim=0).values.tolist(), cells.max(dim=0).values.tolist()
    high = [n + 1 for n in last]
    box = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
    shape = tuple(hi - lo for lo, hi in zip(low, high, strict=True))
    fill = torch.where(fill_inside[box], threshold + 1.0, threshold - 1.0)  # float32, as the values
    blocks = torch.empty((shape[0], block, shape[1], block, shape[2], block), device=values.device)
    blocks[...] = fill[:, None, :, None, :, None]
    a, b, c = (cells - torch.tensor(low, device=cells.device)).T
    blocks[a, :, b, :, c, :] = values
    origin = tuple(lo * block for lo in low)
    crop = tuple(slice(0, min(n * block, resolution - o)) for n, o in zip(shape, origin, strict=True))
    grid = blocks.view(tuple(n * block for n in shape))[crop]
    exact = torch.zeros(shape, dtype=torch.bool, device=values.device)
    exact[a, b, c] = True
    return DensityGrid(grid, origin, resolution, exact, block)
