"""The coarse-to-fine density grid on fields given by formulas: which pieces of surface it
finds, and how few cells it evaluates exactly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from openlrm_blender.engine.geometry.density_grid import _dilate, surface_density_grid
from openlrm_blender.engine.geometry.extraction import extract_mesh
from openlrm_blender.engine.models.field import Field, GridValues
from openlrm_blender.engine.progress import Reporter

Formula = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
RESOLUTION = 128
CENTRE, RADIUS = 60.3, 30.0  # off the lattice of every 4th point
STEP = Reporter().span("mesh", 0.0, 1.0)


class FormulaValues(GridValues):
    points_per_chunk = 1 << 14

    def __init__(self, formula: Formula) -> None:
        self.formula = formula

    def values(self, i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return self.formula(i.double(), j.double(), k.double()).float()


class FormulaField(Field):
    """A field of grid indices, level 0, inside above it."""

    def __init__(self, formula: Formula) -> None:
        self.formula = formula

    def on_grid(self, resolution: int, size: int) -> FormulaValues:
        return FormulaValues(self.formula)

    def positions(self, resolution: int, indices: np.ndarray) -> np.ndarray:
        return indices.astype(np.float32)


def ball(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """1 at the centre, 0 on the sphere, falling one per radius outwards."""
    return 1.0 - torch.sqrt((i - CENTRE) ** 2 + (j - CENTRE) ** 2 + (k - CENTRE) ** 2) / RADIUS


def assert_same_mesh_as_dense(field: Field) -> np.ndarray:
    fast = extract_mesh(field, RESOLUTION, 0.0, dense=False)
    dense = extract_mesh(field, RESOLUTION, 0.0, dense=True)
    np.testing.assert_array_equal(fast.faces, dense.faces)
    np.testing.assert_allclose(fast.vertices, dense.vertices, atol=1e-5, rtol=0)
    return fast.vertices


def test_only_the_cells_the_surface_crosses_and_their_neighbours_are_evaluated():
    """The cells of 4 steps beside the surface whose corners come near the level without
    crossing it are not evaluated: every exactly evaluated cell's centre lies within 6 steps
    of the sphere, and they are under 2.5 times the cells a sheet of its area fills.
    (Evaluating those near cells too took them out to 10.7 steps, 4.6 times as many.)"""
    grid = surface_density_grid(FormulaField(ball), RESOLUTION, 0.0, STEP)
    assert grid.block == 4
    centres = grid.exact_cells.nonzero().numpy() * 4 + np.array(grid.origin) + 1.5
    off_surface = np.abs(np.linalg.norm(centres - CENTRE, axis=1) - RADIUS)
    assert off_surface.max() < 6.0
    sphere_cells = 4 * np.pi * RADIUS**2 / 4**2  # cells of 4 a sheet of the sphere's area fills
    assert int(grid.exact_cells.sum()) < 2.5 * sphere_cells
    assert_same_mesh_as_dense(FormulaField(ball))


def test_a_rod_thinner_than_a_cell_is_followed_from_the_ball_it_leaves():
    """A rod one grid point thick along x, between the lattice's points (none of its cells'
    corners are inside it): the margin follows it from the ball to its far end."""
    far_end = 120.0

    def ball_and_rod(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        across = torch.sqrt((j - 62.0) ** 2 + (k - 62.0) ** 2)
        rod = torch.where(i <= far_end, 0.5 - across, -1.0 - across)
        return torch.maximum(ball(i, j, k), rod)

    vertices = assert_same_mesh_as_dense(FormulaField(ball_and_rod))
    assert vertices[:, 0].max() > far_end


def test_a_speck_round_a_lattice_point_is_found_in_a_field_far_from_the_level():
    """A speck 1.5 steps across round a point of the coarse lattice, where the field is -1
    (far below the level) everywhere else: the cells it crosses have corners either side."""

    def ball_and_speck(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        speck = 1.0 - torch.sqrt((i - 108.0) ** 2 + (j - 20.0) ** 2 + (k - 100.0) ** 2) / 1.5
        return torch.maximum(ball(i, j, k), speck).clamp_min(-1.0)

    vertices = assert_same_mesh_as_dense(FormulaField(ball_and_speck))
    assert (np.linalg.norm(vertices - [108.0, 20.0, 100.0], axis=1) < 2.0).sum() >= 6


def test_a_speck_between_lattice_points_is_found_where_the_field_comes_near_the_level():
    """A speck 2 steps across that holds no point of the coarse lattice, far from the ball:
    its cells' corners do not straddle the level, but one comes within 0.006 of it while
    they differ by 0.29, so the cell is evaluated."""

    def ball_and_speck(i: torch.Tensor, j: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        speck = 0.2 - torch.sqrt((i - 105.5) ** 2 + (j - 21.0) ** 2 + (k - 101.0) ** 2) / 10.0
        return torch.maximum(ball(i, j, k), speck).clamp_min(-1.0)

    vertices = assert_same_mesh_as_dense(FormulaField(ball_and_speck))
    assert (np.linalg.norm(vertices - [105.5, 21.0, 101.0], axis=1) < 2.5).sum() >= 6


def test_the_band_dilation_reaches_every_cell_within_two_of_a_crossed_one():
    """Against a 5^3 max-pool of the same mask, on volumes down to fewer cells than the reach."""
    generator = torch.Generator().manual_seed(0)
    for shape in ((24, 17, 9), (3, 2, 1), (1, 1, 1)):
        crossed = torch.rand(shape, generator=generator) < 0.03
        crossed.view(-1)[0] = True
        pooled = torch.nn.functional.max_pool3d(crossed[None, None].float(), 5, stride=1, padding=2)[0, 0].bool()
        assert torch.equal(_dilate(crossed, 2), pooled)
