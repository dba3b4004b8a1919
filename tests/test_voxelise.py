"""The published voxelisation of a mesh to paint (engine/input/voxelise.py): the published run's
voxels on the tiny vector, open3d 0.19's answers on voxel faces, edges and corners, a box's
shell, and a voxel-by-voxel transcription of open3d's loop on random and tied meshes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openlrm_blender.engine.errors import MeshFileError
from openlrm_blender.engine.input import voxelise as voxelise_module
from openlrm_blender.engine.input.mesh_file import read_mesh
from openlrm_blender.engine.input.voxelise import CLIP, occupied_voxels, to_cube, voxelise

from .conftest import SHARED

VECTOR = SHARED / "vectors" / "trellis-tiny"


def test_the_tiny_vectors_mesh_gives_the_published_runs_voxels():
    mesh = read_mesh(VECTOR / "paint.ply")
    with np.load(VECTOR / "paint.npz") as data:
        published = data["coords"]
    result = voxelise(mesh.vertices, mesh.faces, resolution=32)
    assert result.coords.dtype == np.int32
    np.testing.assert_array_equal(result.coords, published[:, 1:])
    assert (np.lexsort(result.coords.T[::-1]) == np.arange(len(result.coords))).all()  # x, then y, then z
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    np.testing.assert_array_equal(result.centre, (low + high) / 2)
    assert result.scale == (high - low).max()
    cube = result.to_cube(mesh.vertices)
    assert np.abs(cube).max() <= CLIP and np.isclose(np.ptp(cube, axis=0).max(), 1.0, atol=3e-6)


# Single triangles at R = 8 (voxels 1/8 wide, faces at multiples of 1/8) and the voxels open3d
# 0.19.0 (and 0.20.0) gave for them, run through the published call. A triangle on a voxel face
# or edge is tested only against the voxels at and above its lowest corner (floor), so it lands
# in the voxel above the face; one reaching a face from below touches the voxel beyond it.
BOUNDARY_CASES = {
    "in the face x = 0": ([(0, 0.01, 0.01), (0, 0.1, 0.01), (0, 0.01, 0.1)], [(4, 4, 4)]),
    "up to the face x = 1/8": ([(0.01, 0.01, 0.01), (0.125, 0.01, 0.01), (0.01, 0.1, 0.01)], [(4, 4, 4), (5, 4, 4)]),
    "in x = 0 along the edge y = 0": ([(0, 0, 0.01), (0, 0.1, 0.01), (0, 0, 0.1)], [(4, 4, 4)]),
    "a corner on the grid point 0": ([(0, 0, 0), (0.1, 0.01, 0.02), (0.02, 0.1, 0.01)], [(4, 4, 4)]),
    "in z = 0 from the edge y = 0": ([(-0.1, 0, 0), (0.1, 0, 0), (0, 0.1, 0)], [(3, 4, 4), (4, 4, 4)]),
    "a corner on the grid point 1/8": (
        [(0.01, 0.01, 0.01), (0.125, 0.125, 0.125), (0.01, 0.1, 0.05)],
        [(4, 4, 4), (4, 4, 5), (4, 5, 5), (5, 4, 4), (5, 4, 5), (5, 5, 5)],
    ),
    "in the plane x + y = 1/4 through voxel edges": (
        [(0.25, 0, 0.01), (0, 0.25, 0.01), (0.125, 0.125, 0.1)],
        [(4, 4, 4), (4, 5, 4), (4, 6, 4), (5, 4, 4), (5, 5, 4), (6, 4, 4)],
    ),
    "a segment along a voxel edge": ([(0, 0, 0.01), (0, 0, 0.1), (0, 0, 0.05)], [(4, 4, 4)]),
    "a point on a grid point": ([(0.125, -0.25, 0.375)] * 3, [(5, 2, 7)]),
}


@pytest.mark.parametrize("case", BOUNDARY_CASES)
def test_triangles_on_voxel_faces_edges_and_corners_fall_as_in_open3d(case):
    corners, expected = BOUNDARY_CASES[case]
    found = occupied_voxels(np.array(corners, dtype=np.float64), np.array([[0, 1, 2]]), 8)
    assert [tuple(row) for row in found.tolist()] == expected


@pytest.mark.parametrize("resolution", [8, 32, 64])
def test_a_boxs_surface_is_the_shell_of_its_voxels(resolution):
    """A 2 x 1 x 1.5 box: x reaches the clipped cube's sides, y spans [-1/4, 1/4] and z
    [-3/8, 3/8], faces on voxel faces, each in the voxel above its plane (open3d gave the same
    190 voxels at R = 8)."""
    corners = np.array([[x, y, z] for x in (0, 2) for y in (0, 1) for z in (0, 1.5)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads])
    found = voxelise(corners + 5.0, faces, resolution).coords
    r = resolution
    box = np.zeros((r, r, r), dtype=bool)
    box[0:r, r // 4 : 3 * r // 4 + 1, r // 8 : 7 * r // 8 + 1] = True
    inside = np.zeros_like(box)
    inside[1 : r - 1, r // 4 + 1 : 3 * r // 4, r // 8 + 1 : 7 * r // 8] = True
    np.testing.assert_array_equal(found, np.argwhere(box & ~inside))
    if resolution == 8:
        assert len(found) == 190


def _c_round(value: float) -> int:
    whole = math.floor(value)
    return whole + (value - whole >= 0.5)


def _separated(p: float, q: float, radius: float) -> bool:
    return min(p, q) > radius or max(p, q) < -radius


def _touches(centre, half, triangle) -> bool:
    """Akenine-Möller's triangle-box test as open3d compiles it, in Python's doubles."""
    v0, v1, v2 = ([corner[a] - centre[a] for a in range(3)] for corner in triangle)
    e0, e1, e2 = ([b[a] - c[a] for a in range(3)] for b, c in ((v1, v0), (v2, v1), (v0, v2)))

    def on_x(e, a, b):
        return _separated(e[2] * a[1] - e[1] * a[2], e[2] * b[1] - e[1] * b[2], abs(e[2]) * half + abs(e[1]) * half)

    def on_y(e, a, b):
        return _separated(-e[2] * a[0] + e[0] * a[2], -e[2] * b[0] + e[0] * b[2], abs(e[2]) * half + abs(e[0]) * half)

    def on_z(e, a, b):
        return _separated(e[1] * a[0] - e[0] * a[1], e[1] * b[0] - e[0] * b[1], abs(e[1]) * half + abs(e[0]) * half)

    axes = [(on_x, e0, v0, v2), (on_y, e0, v0, v2), (on_z, e0, v1, v2), (on_x, e1, v0, v2), (on_y, e1, v0, v2)]
    axes += [(on_z, e1, v0, v1), (on_x, e2, v0, v1), (on_y, e2, v0, v1), (on_z, e2, v1, v2)]
    if any(test(e, a, b) for test, e, a, b in axes):
        return False
    if any(min(v[a] for v in (v0, v1, v2)) > half or max(v[a] for v in (v0, v1, v2)) < -half for a in range(3)):
        return False
    normal = [e0[1] * e1[2] - e0[2] * e1[1], e0[2] * e1[0] - e0[0] * e1[2], e0[0] * e1[1] - e0[1] * e1[0]]
    nearest = [(-half - v0[a]) if normal[a] > 0 else (half - v0[a]) for a in range(3)]
    farthest = [(half - v0[a]) if normal[a] > 0 else (-half - v0[a]) for a in range(3)]
    if normal[0] * nearest[0] + normal[1] * nearest[1] + normal[2] * nearest[2] > 0:
        return False
    return normal[0] * farthest[0] + normal[1] * farthest[1] + normal[2] * farthest[2] >= 0


def _open3d_loop(points: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """open3d's CreateFromTriangleMeshWithinBounds (0.18 and later) transcribed: each triangle
    against every voxel from floor((low + 0.5) / size), round((high - low) / size) + 2 of them."""
    size = 1.0 / resolution
    half = size / 2
    found = set()
    for face in faces:
        triangle = [points[index].tolist() for index in face]
        low = [min(corner[a] for corner in triangle) for a in range(3)]
        high = [max(corner[a] for corner in triangle) for a in range(3)]
        start = [math.floor((low[a] - -0.5) / size) for a in range(3)]
        count = [_c_round((high[a] - low[a]) / size) + 2 for a in range(3)]
        for i in range(start[0], start[0] + count[0]):
            for j in range(start[1], start[1] + count[1]):
                for k in range(start[2], start[2] + count[2]):
                    centre = [-0.5 + half + index * size for index in (i, j, k)]
                    if _touches(centre, half, triangle):
                        found.add((i, j, k))
    return np.array(sorted(found), dtype=np.int32).reshape(-1, 3)


def _meshes(rng: np.random.Generator):
    """(label, points in the cube, faces, resolution): random, tied on the voxel lattice, degenerate."""
    soup = rng.uniform(-0.45, 0.45, (600, 3))
    yield "random triangles", soup, np.arange(600).reshape(-1, 3), 16
    small = np.repeat(rng.uniform(-0.45, 0.45, (200, 1, 3)), 3, axis=1) + rng.normal(0, 0.02, (200, 3, 3))
    yield "small triangles", small.reshape(-1, 3), np.arange(600).reshape(-1, 3), 32
    lattice = rng.integers(-16, 17, (300, 1, 3)) + rng.integers(-3, 4, (300, 3, 3))
    yield "half-voxel lattice", np.clip(lattice / 32, -CLIP, CLIP).reshape(-1, 3), np.arange(900).reshape(-1, 3), 16
    a, b = rng.uniform(-0.45, 0.45, (2, 100, 3))
    degenerate = np.concatenate([np.stack([a, a, b], 1), np.stack([a, b, (a + b) / 2], 1), np.stack([a, a, a], 1)])
    yield "repeated, collinear and single corners", degenerate.reshape(-1, 3), np.arange(900).reshape(-1, 3), 16


def test_the_vectorised_rule_is_open3ds_loop_voxel_for_voxel(monkeypatch):
    """Passes of a few candidates and triangles, so a triangle's voxels straddle passes too."""
    monkeypatch.setattr(voxelise_module, "CANDIDATES_PER_PASS", 97)
    monkeypatch.setattr(voxelise_module, "TRIANGLES_PER_PASS", 41)
    for label, points, faces, resolution in _meshes(np.random.default_rng(3)):
        expected = _open3d_loop(points, faces, resolution)
        assert len(expected) > 10, label
        np.testing.assert_array_equal(occupied_voxels(points, faces, resolution), expected, err_msg=label)


def test_the_cube_map_centres_scales_and_clips():
    vertices = np.array([[1.0, 2.0, 3.0], [3.0, 2.5, 3.5], [2.0, 2.0, 3.0]])
    result = voxelise(vertices, np.array([[0, 1, 2]]), resolution=4)
    np.testing.assert_array_equal(result.centre, [2.0, 2.25, 3.25])
    assert result.scale == 2.0
    np.testing.assert_array_equal(
        to_cube(vertices, result.centre, result.scale),
        [[-CLIP, -0.125, -0.125], [CLIP, 0.125, 0.125], [0, -0.125, -0.125]],
    )
    assert result.coords.min() >= 0 and result.coords.max() < 4


def test_a_mesh_without_extent_and_points_outside_the_cube_are_refused():
    with pytest.raises(MeshFileError, match="no extent"):
        voxelise(np.ones((3, 3)), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="within the clipped cube"):
        occupied_voxels(np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.1, 0.0]]), np.array([[0, 1, 2]]), 8)
