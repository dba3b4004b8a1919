"""What a model made -> triangle mesh: a field by marching cubes on its density grid
(``density_grid``), a cube grid by FlexiCubes; then each vertex's colour from the same model
where it makes colours."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import EmptyMeshError
from ..models.cube_grid import CubeGrid
from ..models.field import Field
from ..models.recipe import ColourField
from ..progress import Reporter, Stopwatch
from ..result import Mesh
from . import flexicubes
from . import marching_cubes as mc
from .density_grid import DensityGrid, dense_density_grid, no_surface, surface_density_grid


def marching_cubes(grid: DensityGrid, threshold: float, field: Field) -> tuple[np.ndarray, np.ndarray]:
    """Surface where the values cross ``threshold`` (inside is above), at the field's points.

    PyMCubes' mesh, which winds the triangles so that their normals point out of the
    region above the threshold (tests/test_pipeline.py checks this on a ball).
    """
    vertices, faces = mc.marching_cubes(grid.values, float(threshold))
    if len(faces) == 0:
        raise no_surface(threshold, "the grid", float(grid.values.min()), float(grid.values.max()))
    return field.positions(grid.resolution, vertices + grid.origin), faces.astype(np.int32)


@torch.no_grad()
def extract_mesh(
    field: Field,
    resolution: int = 384,
    threshold: float = 3.0,
    dense: bool = False,
    report: Reporter | None = None,
    timings: dict[str, float] | None = None,
    facts: dict[str, float] | None = None,
) -> Mesh:
    """The published mesh recipe for one field; seconds per step go into ``timings``
    ("density", "mcubes", "colours") and the field's values computed into ``facts["queries"]``,
    when given. A model without colours leaves them None (the photo stage's)."""
    if resolution < 2:
        raise ValueError(f"mesh resolution must be at least 2, got {resolution}")
    report = report or Reporter()
    stopwatch = Stopwatch({} if timings is None else timings)
    density_step = report.span("mesh", 0.0, 0.8)
    if dense:
        grid = dense_density_grid(field, resolution, density_step)
    else:
        grid = surface_density_grid(field, resolution, threshold, density_step)
    stopwatch.lap("density")
    if facts is not None:
        facts["queries"] = grid.queries
    report("mesh", 0.8, "marching cubes")
    vertices, faces = marching_cubes(grid, threshold, field)
    stopwatch.lap("mcubes")
    colours = field.colours(vertices, report.span("mesh", 0.85, 1.0))
    stopwatch.lap("colours")
    return Mesh(vertices=vertices, faces=faces, colours=colours)


@torch.no_grad()
def cube_grid_mesh(grid: CubeGrid, colours: ColourField | None, report: Reporter, timings: dict[str, float]) -> Mesh:
    """FlexiCubes' mesh of a model's cube grid ("flexicubes" in ``timings``), each vertex
    coloured by the model where it makes colours ("colours")."""
    stopwatch = Stopwatch(timings)
    report("mesh", 0.0, f"FlexiCubes on a {grid.resolution}^3 grid")
    vertices, faces, _ = flexicubes.extract(grid)
    if len(faces) == 0:
        raise EmptyMeshError("no surface: the model's grid holds no cube the surface crosses")
    vertices, faces = vertices.float().cpu().numpy(), faces.int().cpu().numpy()
    stopwatch.lap("flexicubes")
    report("mesh", 0.5, f"{len(vertices):,} vertices, {len(faces):,} faces")
    mesh_colours = None if colours is None else colours(vertices, report.span("mesh", 0.5, 1.0))
    stopwatch.lap("colours")
    return Mesh(vertices=vertices, faces=faces, colours=mesh_colours)


def extract(
    surface: Field | CubeGrid,
    colours: ColourField | None,
    resolution: int,
    threshold: float,
    dense: bool,
    report: Reporter,
    timings: dict[str, float],
    facts: dict[str, float],
) -> Mesh:
    """The mesh of whatever surface a model made: a field's at ``resolution`` and
    ``threshold`` (its own colours), a cube grid's at its own resolution (``colours``)."""
    if isinstance(surface, Field):
        return extract_mesh(surface, resolution, threshold, dense, report, timings, facts)
    return cube_grid_mesh(surface, colours, report, timings)
