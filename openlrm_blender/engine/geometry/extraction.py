"""Triplanes -> coloured triangle mesh: marching cubes on the density grid
(``density_grid``), then each vertex's colour from the same field."""

from __future__ import annotations

import numpy as np
import torch

from . import marching_cubes as mc
from ..progress import Reporter, StepCallback, Stopwatch
from ..result import Mesh
from ..models.triplane import TriplaneDecoder
from .density_grid import POINTS_PER_CHUNK, DensityGrid, chunk_points, dense_density_grid, no_surface, surface_density_grid


def marching_cubes(grid: DensityGrid, threshold: float, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Surface where density crosses ``threshold`` (inside is above), in the field's box
    (each coordinate within ``radius``).

    PyMCubes' mesh, which winds the triangles so that their normals point out of the
    region above the threshold (tests/test_pipeline.py checks this on a ball).
    """
    vertices, faces = mc.marching_cubes(grid.values, float(threshold))
    if len(faces) == 0:
        raise no_surface(threshold, "the grid", float(grid.values.min()), float(grid.values.max()))
    vertices = (vertices + grid.origin) / (grid.resolution - 1) * 2.0 - 1.0
    if radius != 1.0:
        vertices = vertices * radius
    return vertices.astype(np.float32), faces.astype(np.int32)


@torch.no_grad()
def vertex_colours(
    decoder: TriplaneDecoder, planes: torch.Tensor, vertices: np.ndarray, step: StepCallback
) -> np.ndarray:
    """Colour at each vertex, queried in chunks."""
    colours = np.empty_like(vertices, dtype=np.float32)
    projected = decoder.project(planes)
    per_chunk = chunk_points(planes.device, POINTS_PER_CHUNK)
    for start in range(0, len(vertices), per_chunk):
        chunk = torch.from_numpy(vertices[start : start + per_chunk] / np.float32(decoder.radius))
        chunk = chunk.to(planes.device, planes.dtype)[None]
        raw = decoder.decode_hidden(decoder.hidden_from_projected(projected, chunk))
        colours[start : start + len(chunk[0])] = decoder.colour_from_raw(raw[0, :, 1:]).float().cpu().numpy()
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
    vertices, faces = marching_cubes(grid, threshold, decoder.radius)
    stopwatch.lap("mcubes")
    colours = vertex_colours(decoder, planes, vertices, report.span("mesh", 0.85, 1.0))
    stopwatch.lap("colours")
    return Mesh(vertices=vertices, faces=faces, colours=colours)
