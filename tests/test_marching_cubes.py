"""Our marching cubes (PyTorch, on the grid's device) against PyMCubes (the published
recipe's), on Python 3.11 where it has wheels, and against the tiny vector's reference mesh;
a tensor meshed where it lies, and the CPU's NumPy passes over the grid against PyTorch's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openlrm_blender.engine.geometry.marching_cubes import CORNERS, _crossed_cells, marching_cubes
from tests.conftest import TINY


def pymcubes():
    return pytest.importorskip("mcubes", reason="PyMCubes (the oracle) has wheels for Python 3.11 only")


def assert_same_as_pymcubes(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    expected_vertices, expected_faces = pymcubes().marching_cubes(values, level)
    vertices, faces = marching_cubes(values, level)
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    np.testing.assert_array_equal(vertices, expected_vertices)  # bit for bit, in the same order
    np.testing.assert_array_equal(faces, expected_faces.astype(np.int64))
    return vertices, faces


@pytest.mark.parametrize("case", range(256))
def test_every_case_of_one_cell(case):
    values = np.ones((2, 2, 2))
    for corner, (x, y, z) in enumerate(CORNERS):
        if case >> corner & 1:
            values[x, y, z] = 0.0
    _, faces = assert_same_as_pymcubes(values, 0.5)
    assert (len(faces) == 0) == (case in (0, 255))


@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 4, 5), (2, 9, 3), (17, 9, 13), (40, 33, 35)])
@pytest.mark.parametrize("seed", range(3))
def test_random_fields(shape, seed):
    values = np.random.default_rng(seed).random(shape, dtype=np.float32)
    assert_same_as_pymcubes(values, 0.5)


def test_values_exactly_at_the_level_count_as_outside():
    values = np.round(np.random.default_rng(7).random((20, 21, 22)) * 4) / 4  # a quarter of the points at 0.5
    vertices, _ = assert_same_as_pymcubes(values, 0.5)
    assert len(vertices) > 100


def test_a_level_that_float32_rounds():
    values = np.random.default_rng(5).normal(3.0, 1.0, (25, 26, 27)).astype(np.float32)
    assert_same_as_pymcubes(values, 2.7)


def test_a_strided_view_and_a_float64_grid():
    values = np.random.default_rng(3).random((30, 40, 50))[::2, 3:, ::-1]
    assert not values.flags.c_contiguous
    assert_same_as_pymcubes(values, 0.3)


def test_a_ball_at_grid_128():
    axis = np.linspace(-1, 1, 128, dtype=np.float32)
    radius = np.sqrt(axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2)
    _, faces = assert_same_as_pymcubes(4.0 - 2.0 * radius, 3.0)
    assert len(faces) > 30000


def test_no_surface_and_degenerate_grids():
    for values in (np.zeros((5, 5, 5)), np.ones((5, 5, 5)), np.zeros((1, 5, 5)), np.zeros((5, 5, 0))):
        vertices, faces = marching_cubes(values, 0.5)
        assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    with pytest.raises(ValueError, match="3D grid"):
        marching_cubes(np.zeros((4, 4)), 0.5)


def test_the_tiny_vectors_reference_mesh():
    """The published recipe's mesh (PyMCubes on the reference density grid), on any Python."""
    with np.load(TINY / "expected.npz") as expected:
        grid, reference_faces, reference_vertices = (
            expected[key] for key in ("grid_sigma", "mesh_faces", "mesh_vertices")
        )
    vertices, faces = marching_cubes(grid, 3.0)
    np.testing.assert_array_equal(faces, reference_faces)
    np.testing.assert_allclose(vertices / (grid.shape[0] - 1) * 2.0 - 1.0, reference_vertices, atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_a_tensor_is_meshed_as_its_array_is(seed):
    values = np.random.default_rng(seed).random((23, 19, 21), dtype=np.float32)
    from_array, from_tensor = marching_cubes(values, 0.5), marching_cubes(torch.from_numpy(values), 0.5)
    for ours, theirs in zip(from_array, from_tensor, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("seed", range(3))
def test_the_cpus_numpy_passes_find_what_pytorchs_own_find(seed):
    """The crossed cells and their cases: through NumPy (the CPU's) and PyTorch's (a GPU's)."""
    values = torch.from_numpy(np.random.default_rng(seed).random((31, 17, 25), dtype=np.float32))
    numpy_cells, numpy_cases = _crossed_cells(values, 0.5, through_numpy=True)
    torch_cells, torch_cases = _crossed_cells(values, 0.5, through_numpy=False)
    assert len(numpy_cells) > 100
    assert torch.equal(numpy_cells, torch_cells) and torch.equal(numpy_cases, torch_cases)
