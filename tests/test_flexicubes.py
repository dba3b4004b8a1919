"""Our sparse FlexiCubes against the published code's meshes (tests/data/flexicubes, recorded
from TRELLIS's SparseFeatures2Mesh), and properties a wrong extraction would break."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from openlrm_blender.engine.geometry.flexicubes import extract
from openlrm_blender.engine.models.cube_grid import CubeGrid, flat_index, grid_coords, lattice_position
from openlrm_blender.engine.models.trellis.cube_features import cube_grid_from_features

VECTORS = sorted((Path(__file__).parent / "data" / "flexicubes").glob("*.npz"))


def test_there_are_vectors():
    assert len(VECTORS) >= 4


@pytest.mark.parametrize("path", VECTORS, ids=[path.stem for path in VECTORS])
def test_same_mesh_as_published(path):
    with np.load(path) as data:
        recorded = {key: data[key] for key in data.files}
    grid = cube_grid_from_features(
        torch.from_numpy(recorded["coords"]), torch.from_numpy(recorded["features"]), int(recorded["resolution"])
    )
    vertices, faces, attributes = extract(grid)
    assert vertices.dtype == torch.float32 and faces.dtype == torch.int64
    np.testing.assert_array_equal(faces.numpy(), recorded["faces"])  # same triangles, same order and winding
    np.testing.assert_allclose(vertices.numpy(), recorded["vertices"], rtol=0, atol=1e-5)
    if "attributes" in recorded:
        np.testing.assert_allclose(attributes.numpy(), recorded["attributes"], rtol=0, atol=1e-5)
    else:
        assert attributes is None


def sphere_grid(resolution: int, radius: float) -> CubeGrid:
    """A sphere's signed distance at every lattice point inside it or near, nothing deformed,
    no cube weights."""
    size = resolution + 1
    index = torch.arange(size**3)
    position = lattice_position(grid_coords(index, size), resolution)
    sdf = position.norm(dim=1) - radius
    near = sdf < 2 / resolution
    no_cubes = torch.zeros(0, dtype=torch.long)
    return CubeGrid(
        resolution=resolution,
        vertex_index=index[near],
        vertex_position=position[near],
        vertex_sdf=sdf[near],
        vertex_attributes=None,
        cube_index=no_cubes,
        beta=torch.zeros(0, 12),
        alpha=torch.zeros(0, 8),
        gamma=torch.zeros(0),
    )


def test_sphere_is_closed_manifold_and_on_the_sphere():
    resolution, radius = 24, 0.3
    vertices, faces, _ = extract(sphere_grid(resolution, radius))
    assert len(faces) > 1000
    # Every directed edge once, and its reverse once: closed, edge-manifold, consistently wound.
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = directed[:, 0] * len(vertices) + directed[:, 1]
    reverse = directed[:, 1] * len(vertices) + directed[:, 0]
    assert torch.unique(keys).numel() == keys.numel()
    assert torch.equal(torch.sort(keys).values, torch.sort(reverse).values)
    assert torch.unique(faces).numel() == len(vertices)  # no vertex left out
    distance = vertices.norm(dim=1) - radius
    assert distance.abs().max() < 0.1 / resolution
    # Wound towards the outside (positive signed distance): the enclosed volume is positive.
    a, b, c = vertices[faces].unbind(dim=1)
    volume = (a * torch.cross(b, c, dim=1)).sum() / 6
    assert volume == pytest.approx(4 / 3 * torch.pi * radius**3, rel=0.03)


def random_grid(resolution: int, seed: int) -> CubeGrid:
    generator = torch.Generator().manual_seed(seed)
    occupied = torch.rand(resolution**3, generator=generator) < 0.3
    coords = grid_coords(torch.nonzero(occupied).squeeze(1), resolution).int()
    features = torch.randn(len(coords), 101, generator=generator)
    return cube_grid_from_features(coords, features, resolution)


def test_listing_every_default_gives_the_same_mesh():
    grid = random_grid(10, seed=0)
    size, resolution = grid.resolution + 1, grid.resolution
    points = torch.arange(size**3)
    listed = torch.isin(points, grid.vertex_index)
    position = lattice_position(grid_coords(points, size), resolution)
    position[listed] = grid.vertex_position
    sdf = torch.ones(size**3)
    sdf[listed] = grid.vertex_sdf
    attributes = torch.zeros(size**3, grid.vertex_attributes.shape[1])
    attributes[listed] = grid.vertex_attributes
    cubes = torch.arange(resolution**3)
    weighted = torch.isin(cubes, grid.cube_index)
    weights = torch.zeros(resolution**3, 21)
    weights[weighted] = torch.cat([grid.beta, grid.alpha, grid.gamma[:, None]], dim=1)
    dense = CubeGrid(
        resolution, points, position, sdf, attributes, cubes, weights[:, :12], weights[:, 12:20], weights[:, 20]
    )

    sparse_mesh, dense_mesh = extract(grid), extract(dense)
    assert len(sparse_mesh[1]) > 100
    for ours, theirs in zip(sparse_mesh, dense_mesh, strict=True):
        assert torch.equal(ours, theirs)


def test_nothing_inside_gives_an_empty_mesh():
    grid = random_grid(6, seed=1)
    outside = dataclasses.replace(grid, vertex_sdf=grid.vertex_sdf.abs())
    vertices, faces, attributes = extract(outside)
    assert vertices.shape == (0, 3) and faces.shape == (0, 3) and attributes.shape == (0, 6)


def test_makes_no_tensor_on_the_default_device():
    """Every tensor extract makes follows the grid's device: with the default device made
    'meta', a tensor made without naming a device could not mix with the grid's."""
    grid = random_grid(8, seed=2)
    expected = extract(grid)
    with torch.device("meta"):
        found = extract(grid)
    for ours, theirs in zip(found, expected, strict=True):
        assert ours.device == grid.device and torch.equal(ours, theirs)


def test_builder_averages_shared_corners_and_deforms():
    """Two cubes side by side along x share four points: each takes the mean of both cubes'
    values, after the -1/R bias."""
    resolution = 4
    coords = torch.tensor([[1, 2, 2], [2, 2, 2]], dtype=torch.int32)
    features = torch.zeros(2, 53)
    features[0, :8], features[1, :8] = 0.25, 0.75  # signed distances
    features[1, 8:32] = 1.0  # deformations
    grid = cube_grid_from_features(coords, features, resolution)
    assert grid.vertex_attributes is None and grid.vertex_index.numel() == 12
    shared = grid_coords(grid.vertex_index, resolution + 1)[:, 0] == 2
    expected_sdf = torch.where(shared, 0.5, torch.where(grid_coords(grid.vertex_index, 5)[:, 0] == 1, 0.25, 0.75))
    torch.testing.assert_close(grid.vertex_sdf, expected_sdf - 1 / resolution)
    offset = grid.vertex_position - lattice_position(grid_coords(grid.vertex_index, resolution + 1), resolution)
    expected_offset = torch.tanh(torch.where(shared, 0.5, (grid_coords(grid.vertex_index, 5)[:, 0] == 3).float()))
    torch.testing.assert_close(offset, (expected_offset / (2 * resolution))[:, None].expand(-1, 3))
    assert torch.equal(grid.cube_index, flat_index(coords, resolution))


def test_builder_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="channels"):
        cube_grid_from_features(torch.zeros(1, 3, dtype=torch.int32), torch.zeros(1, 60), 8)
