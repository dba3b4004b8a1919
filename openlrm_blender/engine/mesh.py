"""Triplanes -> coloured triangle mesh, by marching cubes on a density grid.

The grid is the published one: G points per axis over [-1, 1], indexed [i, j, k] =
(x_i, y_j, z_k). Two ways to fill it:

- ``dense_density_grid``: the published recipe, every point through the sampler and
  the whole decoder. Kept as the reference and as an option.
- ``density_grid``: the same values up to rounding, much faster. The decoder's first
  layer is applied to the planes once; and because plane 0 depends only on (i, j),
  plane 1 on (i, k) and plane 2 on (k, j), each plane is resampled once on a G x G
  grid, and a slab of the volume is a sum of three broadcast tables.
- ``surface_density_grid`` (the default): the same tables, evaluated on a coarse grid
  (every ``COARSE_STEP``-th point) and then exactly only in the coarse cells where the
  density crosses the threshold, and their neighbours (a one-cell safety margin). Other
  points get a value on their coarse cell's side of the threshold, so marching cubes
  gives the dense grid's mesh. It can differ only where a feature is thinner than a
  coarse cell and falls between coarse points (a sliver or a hole that no coarse point
  sees); ``dense=True`` evaluates every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import mcubes
import numpy as np
import torch

from .errors import EmptyMeshError
from .progress import Reporter, StepCallback, Stopwatch
from .triplane import TriplaneDecoder, colour_from_raw, density_from_raw

POINTS_PER_CHUNK = 1 << 18
COARSE_STEP = 4
# Past this share of the volume near the surface (noise-like fields), evaluating every
# point slab by slab is cheaper than gathering the near points.
MAX_NEAR_SHARE = 0.3


@dataclass
class Mesh:
    vertices: np.ndarray  # float32 (V, 3), x right, y away from the input camera, z up
    faces: np.ndarray  # int32 (F, 3), counter-clockwise seen from outside
    colors: np.ndarray  # float32 (V, 3), sRGB values in [0, 1] as the model produced them

    @property
    def colors_u8(self) -> np.ndarray:
        """8-bit colours the published way: floor(colour * 255)."""
        return np.clip(np.floor(self.colors * 255.0), 0, 255).astype(np.uint8)


def grid_axis(resolution: int, device: torch.device) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, resolution, device=device)


@torch.no_grad()
def dense_density_grid(decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, step: StepCallback) -> np.ndarray:
    """Density on the G^3 grid the published way (reference; slow)."""
    axis = grid_axis(resolution, planes.device)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(1, -1, 3)
    out = torch.empty(points.shape[1], dtype=torch.float32)
    for start in range(0, points.shape[1], POINTS_PER_CHUNK):
        chunk = points[:, start : start + POINTS_PER_CHUNK]
        sigma, _ = decoder.query(planes, chunk.to(planes.dtype))
        out[start : start + chunk.shape[1]] = sigma.reshape(-1).float().cpu()
        step((start + chunk.shape[1]) / points.shape[1], "density grid (dense)")
    return out.reshape(resolution, resolution, resolution).numpy()


def _plane_tables(decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int) -> tuple[torch.Tensor, ...]:
    """Projected planes sampled on the grid: xy[i, j] (plane 0), xz[i, k] (plane 1), yz[j, k] (plane 2)."""
    projected = decoder.project(planes)[0]  # 3, HIDDEN, H, W
    axis = grid_axis(resolution, planes.device).to(planes.dtype)
    # grid_sample coordinates (width, height) = (first, second) index of the table.
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)[None]  # 1, G, G, 2
    tables = torch.nn.functional.grid_sample(
        projected, coords.expand(3, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
    )  # 3, HIDDEN, G, G
    xy, xz, zy = tables.permute(0, 2, 3, 1)  # each G, G, HIDDEN
    return xy, xz, zy.transpose(0, 1)


def _density(decoder: TriplaneDecoder, hidden: torch.Tensor) -> torch.Tensor:
    return density_from_raw(decoder.decode_hidden(hidden)[..., 0]).float().cpu()


@torch.no_grad()
def _block_density(decoder: TriplaneDecoder, tables: tuple[torch.Tensor, ...], step: StepCallback) -> torch.Tensor:
    """Density on the (sub-)grid the tables were sampled for, slab by slab along x."""
    xy, xz, yz = tables
    bias = decoder.first_layer.bias.to(xy.dtype)
    size = len(xy)
    out = torch.empty((size,) * 3, dtype=torch.float32)
    slabs = max(1, POINTS_PER_CHUNK // size**2)
    for start in range(0, size, slabs):
        rows = slice(start, min(start + slabs, size))
        out[rows] = _density(decoder, xy[rows, :, None] + xz[rows, None, :] + yz[None] + bias)
        step(rows.stop / size, "density grid")
    return out


@torch.no_grad()
def density_grid(decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, step: StepCallback) -> np.ndarray:
    """Density on every point of the G^3 grid, from the three plane tables."""
    tables = _plane_tables(decoder, planes, resolution)
    return _block_density(decoder, tables, step).numpy()


def _neighbourhood_max(cells: torch.Tensor) -> torch.Tensor:
    """Each cell's maximum over itself and its 26 neighbours."""
    return torch.nn.functional.max_pool3d(cells[None, None], 3, stride=1, padding=1)[0, 0]


def _cells_near_surface(coarse: torch.Tensor, threshold: float) -> np.ndarray:
    """Coarse cells where the fine grid may cross the threshold, with a one-cell margin.

    A cell counts when its corners straddle the threshold, or when its nearest corner is
    closer to the threshold than the density varies across the cells around it (so a
    bump between coarse points is still looked at).
    """
    n = coarse.shape[0] - 1
    corners = torch.stack([coarse[a : a + n, b : b + n, c : c + n] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    low, high = corners.min(dim=0).values, corners.max(dim=0).values
    distance = torch.maximum(low - threshold, threshold - high)  # > 0: all corners on one side
    near = distance <= _neighbourhood_max(high - low)
    return (_neighbourhood_max(near.float()) > 0).numpy()


@torch.no_grad()
def surface_density_grid(
    decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, threshold: float, step: StepCallback
) -> np.ndarray:
    """The G^3 grid for marching cubes: exact near the surface, one-sided elsewhere."""
    tables = _plane_tables(decoder, planes, resolution)
    coarse_index = np.unique(np.r_[np.arange(0, resolution, COARSE_STEP), resolution - 1])
    coarse_tables = tuple(table[coarse_index][:, coarse_index] for table in tables)
    coarse = _block_density(decoder, coarse_tables, lambda f, m: step(0.2 * f, m))
    active = _cells_near_surface(coarse, threshold)
    if active.mean() > MAX_NEAR_SHARE:
        return _block_density(decoder, tables, lambda f, m: step(0.2 + 0.8 * f, m)).numpy()
    coarse = coarse.numpy()
    inside = coarse > threshold
    # The coarse cell each fine index lies in (points on a cell's far face go with the next cell).
    cell_of = np.minimum(np.searchsorted(coarse_index, np.arange(resolution), side="right") - 1, len(coarse_index) - 2)
    cells = np.ix_(cell_of, cell_of, cell_of)
    grid = np.where(inside[cells], np.float32(threshold + 1.0), np.float32(threshold - 1.0))
    grid[np.ix_(coarse_index, coarse_index, coarse_index)] = coarse
    i, j, k = (torch.from_numpy(axis) for axis in np.nonzero(active[cells]))
    xy, xz, yz = tables
    bias = decoder.first_layer.bias.to(xy.dtype)
    values = torch.empty(len(i), dtype=torch.float32)
    for start in range(0, len(i), POINTS_PER_CHUNK):
        chunk = slice(start, start + POINTS_PER_CHUNK)
        a, b, c = i[chunk], j[chunk], k[chunk]
        values[chunk] = _density(decoder, xy[a, b] + xz[a, c] + yz[b, c] + bias)
        step(0.2 + 0.8 * min(start + POINTS_PER_CHUNK, len(i)) / len(i), "density near the surface")
    grid[i.numpy(), j.numpy(), k.numpy()] = values.numpy()
    return grid


def marching_cubes(grid: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface where density crosses ``threshold`` (inside is above), in [-1, 1] coordinates.

    PyMCubes winds the triangles so that their normals point out of the region above
    the threshold (tests/test_pipeline.py checks this on a ball).
    """
    vertices, faces = mcubes.marching_cubes(grid, float(threshold))
    if len(faces) == 0:
        raise EmptyMeshError(
            f"no surface: the density never crosses the threshold {threshold:g} "
            f"(it ranges {float(grid.min()):.3g} to {float(grid.max()):.3g}); try a lower threshold"
        )
    vertices = vertices / (grid.shape[0] - 1) * 2.0 - 1.0
    return vertices.astype(np.float32), faces.astype(np.int32)


@torch.no_grad()
def vertex_colours(decoder: TriplaneDecoder, planes: torch.Tensor, vertices: np.ndarray, step: StepCallback) -> np.ndarray:
    """Colour at each vertex, queried in chunks."""
    colours = np.empty_like(vertices, dtype=np.float32)
    projected = decoder.project(planes)
    for start in range(0, len(vertices), POINTS_PER_CHUNK):
        chunk = torch.from_numpy(vertices[start : start + POINTS_PER_CHUNK]).to(planes.device, planes.dtype)[None]
        raw = decoder.decode_hidden(decoder.hidden_from_projected(projected, chunk))
        colours[start : start + len(chunk[0])] = colour_from_raw(raw[0, :, 1:]).float().cpu().numpy()
        step((start + len(chunk[0])) / len(vertices), "vertex colours")
    return colours


def extract_mesh(
    decoder: TriplaneDecoder,
    planes: torch.Tensor,
    resolution: int = 384,
    threshold: float = 3.0,
    dense: bool = False,
    report: Reporter | None = None,
    timings: dict[str, float] | None = None,
) -> Mesh:
    """The published mesh recipe for one set of planes (N = 1); seconds per step go into
    ``timings`` ("density", "mcubes", "colours") when given."""
    if resolution < 2:
        raise ValueError(f"mesh resolution must be at least 2, got {resolution}")
    report = report or Reporter()
    stopwatch = Stopwatch({} if timings is None else timings)
    density_step = report.span("mesh", 0.0, 0.8)
    if dense:
        grid = dense_density_grid(decoder, planes, resolution, density_step)
    else:
        grid = surface_density_grid(decoder, planes, resolution, threshold, density_step)
    stopwatch.lap("density")
    report("mesh", 0.8, "marching cubes")
    vertices, faces = marching_cubes(grid, threshold)
    stopwatch.lap("mcubes")
    colours = vertex_colours(decoder, planes, vertices, report.span("mesh", 0.85, 1.0))
    stopwatch.lap("colours")
    return Mesh(vertices=vertices, faces=faces, colors=colours)
