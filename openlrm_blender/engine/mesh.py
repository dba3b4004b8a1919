"""Triplanes -> coloured triangle mesh, by marching cubes on a density grid.

The grid is the published one: G points per axis over [-1, 1], indexed [i, j, k] =
(x_i, y_j, z_k). Two ways to fill it:

- ``dense_density_grid``: the published recipe, every point through the sampler and
  the whole decoder. Kept as the reference and as an option.
- ``density_grid``: the same values up to rounding, much faster. The decoder's first
  layer is applied to the planes once; and because plane 0 depends only on (i, j),
  plane 1 on (i, k) and plane 2 on (k, j), each plane is resampled once on a G x G
  grid, and a slab of the volume is a sum of three broadcast tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import mcubes
import numpy as np
import torch

from .errors import EmptyMeshError
from .progress import Reporter, StepCallback
from .triplane import TriplaneDecoder, colour_from_raw, density_from_raw

POINTS_PER_CHUNK = 1 << 18


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
    """Projected planes sampled on the grid: A[i, j] (plane 0), B[i, k] (plane 1), C[k, j] (plane 2)."""
    projected = decoder.project(planes)[0]  # 3, HIDDEN, H, W
    axis = grid_axis(resolution, planes.device).to(planes.dtype)
    # grid_sample coordinates (width, height) = (first, second) index of the table.
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1)[None]  # 1, G, G, 2
    tables = torch.nn.functional.grid_sample(
        projected, coords.expand(3, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
    )  # 3, HIDDEN, G, G
    return tuple(tables.permute(0, 2, 3, 1))  # each G, G, HIDDEN


@torch.no_grad()
def density_grid(decoder: TriplaneDecoder, planes: torch.Tensor, resolution: int, step: StepCallback) -> np.ndarray:
    """Density on the G^3 grid, slab by slab along x, from the three plane tables."""
    table_xy, table_xz, table_zy = _plane_tables(decoder, planes, resolution)
    table_yz = table_zy.transpose(0, 1)  # [j, k]
    bias = decoder.first_layer.bias.to(planes.dtype)
    out = torch.empty((resolution,) * 3, dtype=torch.float32)
    slabs = max(1, POINTS_PER_CHUNK // resolution**2)
    for start in range(0, resolution, slabs):
        rows = slice(start, min(start + slabs, resolution))
        hidden = table_xy[rows, :, None] + table_xz[rows, None, :] + table_yz[None] + bias
        raw = decoder.decode_hidden(hidden)[..., 0]
        out[rows] = density_from_raw(raw).float().cpu()
        step(rows.stop / resolution, "density grid")
    return out.numpy()


def marching_cubes(grid: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Surface where density crosses ``threshold`` (inside is above), in [-1, 1] coordinates.

    PyMCubes winds triangles counter-clockwise seen from the low-value side's far
    side, i.e. with normals pointing out of the region above the threshold.
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
) -> Mesh:
    """The published mesh recipe for one set of planes (N = 1)."""
    if resolution < 2:
        raise ValueError(f"mesh resolution must be at least 2, got {resolution}")
    report = report or Reporter()
    fill = dense_density_grid if dense else density_grid
    grid = fill(decoder, planes, resolution, report.span("mesh", 0.0, 0.8))
    report("mesh", 0.8, "marching cubes")
    vertices, faces = marching_cubes(grid, threshold)
    colours = vertex_colours(decoder, planes, vertices, report.span("mesh", 0.85, 1.0))
    return Mesh(vertices=vertices, faces=faces, colors=colours)
