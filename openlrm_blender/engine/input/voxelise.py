"""The voxels TRELLIS's second stage paints a given mesh on: the published voxelisation, voxel
for voxel.

The mesh is centred on its bounding box, divided by the box's longest side and clipped to
±(0.5 - 1e-6); a voxel of the R³ grid over [-0.5, 0.5]³ is occupied when a triangle touches it,
as open3d's ``VoxelGrid.create_from_triangle_mesh_within_bounds`` (0.18 and later; 0.17 stopped at
a triangle's first voxel) decides it for the published code:

- a triangle is tested against the voxels from the one holding its lowest corner,
  floor((low + 0.5) / size), to round((high - low) / size) + 1 further ones on each axis (C's
  round, half away from zero): one whose low side lies exactly on a voxel face is never tested
  against the voxel below, though it touches it;
- the test is Akenine-Möller's separating-axis triangle-box test in double precision, half size
  size / 2 and no epsilon, so touching counts; a box's centre is (-0.5 + size / 2) + index * size.

Every sum and product here is open3d's on the same doubles, in the same order, so the ties on
voxel faces, edges and corners come out as they do there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import MeshFileError

RESOLUTION = 64  # the published grid
CLIP = 0.5 - 1e-6  # the published clip: every vertex strictly inside the grid's outer faces
ORIGIN = -0.5
# Candidate voxels tested at once, and triangles read at once: a few hundred MB of temporaries
# at most, whatever the mesh's size.
CANDIDATES_PER_PASS = 1 << 18
TRIANGLES_PER_PASS = 1 << 18
# For each edge of a triangle (v1 - v0, v2 - v1, v0 - v2) and each box axis (x, y, z), the two
# corners the published test projects onto their cross product: its choice, which rounding sees.
_PROJECTED = (((0, 2), (0, 2), (1, 2)), ((0, 2), (0, 2), (0, 1)), ((0, 1), (0, 1), (1, 2)))


@dataclass(frozen=True)
class Voxelisation:
    coords: np.ndarray  # int32 (N, 3): occupied voxels (x, y, z), rows in coordinate order
    centre: np.ndarray  # float64 (3,): the centre of the mesh's bounding box
    scale: float  # the box's longest side
    resolution: int

    def to_cube(self, points: np.ndarray) -> np.ndarray:
        """Points (the mesh's own, say) in the cube the voxels were taken in."""
        return to_cube(points, self.centre, self.scale)


def normalisation(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """The centre of the vertices' bounding box and its longest side."""
    vertices = np.asarray(vertices, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    scale = float((high - low).max())
    if not scale > 0.0:
        raise MeshFileError("the mesh has no extent (all its vertices are one point): there is nothing to paint")
    return (low + high) / 2, scale


def to_cube(points: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    return np.clip((np.asarray(points, dtype=np.float64) - centre) / scale, -CLIP, CLIP)


def voxelise(vertices: np.ndarray, faces: np.ndarray, resolution: int = RESOLUTION) -> Voxelisation:
    """The published voxels of a mesh, and the map that took it into their cube."""
    centre, scale = normalisation(vertices)
    coords = occupied_voxels(to_cube(vertices, centre, scale), faces, resolution)
    return Voxelisation(coords, centre, scale, resolution)


def occupied_voxels(points: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """The voxels of the R³ grid over [-0.5, 0.5]³ that the triangles touch, by open3d's rule;
    the points must lie within ±CLIP (``to_cube`` puts them there), so none is outside the grid."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) and np.abs(points).max() > CLIP:
        raise ValueError("the points must lie within the clipped cube (to_cube)")
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    size = 1.0 / resolution
    occupied = np.zeros(resolution**3, dtype=bool)
    for first in range(0, len(faces), TRIANGLES_PER_PASS):
        corners = points[faces[first : first + TRIANGLES_PER_PASS]]  # (T, corner, axis)
        start, count = _spans(corners.min(axis=1), corners.max(axis=1), size)
        for triangle, voxel in _candidates(start, count):
            centre = (ORIGIN + size / 2) + voxel * size
            hit = _touches(corners[triangle] - centre[:, None, :], size / 2)
            index = voxel[hit].astype(np.int64)
            occupied[(index[:, 0] * resolution + index[:, 1]) * resolution + index[:, 2]] = True
    return np.argwhere(occupied.reshape((resolution,) * 3)).astype(np.int32)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """C's round() of values >= 0 (NumPy's rounds halves to even)."""
    whole = np.floor(values)
    return whole + (values - whole >= 0.5)


def _spans(low: np.ndarray, high: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle and axis, the first voxel index and the number of voxels, among those open3d
    tests, whose slab the triangle's extent touches: the separating test along the box's own axes,
    done once per axis instead of per voxel (its outcome along an axis does not depend on the
    others; rounding is monotonic, so the slabs that pass are consecutive)."""
    half = size / 2
    first = np.floor((low - ORIGIN) / size)
    tested = (_round_half_away((high - low) / size).astype(np.int64) + 2).ravel()
    starts = np.cumsum(tested) - tested
    element = np.repeat(np.arange(tested.size), tested)
    step = np.arange(len(element)) - np.repeat(starts, tested)
    centre = (ORIGIN + half) + (first.ravel()[element] + step) * size
    below = np.add.reduceat(low.ravel()[element] - centre > half, starts).reshape(low.shape)
    above = np.add.reduceat(high.ravel()[element] - centre < -half, starts).reshape(low.shape)
    return first + below, tested.reshape(low.shape) - below - above


def _candidates(start: np.ndarray, count: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(triangle, voxel index as float64 (n, 3)) for every voxel in each triangle's spans, a
    pass's worth at a time."""
    total = count.prod(axis=1)
    ends = np.cumsum(total)
    for first in range(0, int(ends[-1]) if len(ends) else 0, CANDIDATES_PER_PASS):
        number = np.arange(first, min(first + CANDIDATES_PER_PASS, int(ends[-1])))
        triangle = np.searchsorted(ends, number, side="right")
        local = number - (ends[triangle] - total[triangle])
        depth, height = count[triangle, 2], count[triangle, 1]
        offset = np.stack([local // (height * depth), local // depth % height, local % depth], axis=1)
        yield triangle, start[triangle] + offset


def _touches(v: np.ndarray, half: float) -> np.ndarray:
    """Akenine-Möller's test of triangles (corners relative to their box's centre, (n, 3, 3))
    against a box of this half size, less its box-axis part (``_spans`` did it): the nine
    edge-by-axis separating axes, then the triangle's plane."""
    x, y, z = 0, 1, 2
    edges = np.stack([v[:, 1] - v[:, 0], v[:, 2] - v[:, 1], v[:, 0] - v[:, 2]], axis=1)
    hit = np.ones(len(v), dtype=bool)
    for number, edge in enumerate(edges.transpose(1, 0, 2)):
        for axis, (p, q) in enumerate(_PROJECTED[number]):
            if axis == x:
                a, b, u, w = edge[:, z], edge[:, y], y, z  # projection a*v[y] - b*v[z]
            elif axis == y:
                a, b, u, w = edge[:, x], edge[:, z], z, x  # -e[z]*v[x] + e[x]*v[z], rewritten exactly
            else:
                a, b, u, w = edge[:, y], edge[:, x], x, y
            first, second = a * v[:, p, u] - b * v[:, p, w], a * v[:, q, u] - b * v[:, q, w]
            radius = np.abs(a) * half + np.abs(b) * half
            hit &= (np.minimum(first, second) <= radius) & (np.maximum(first, second) >= -radius)
    e0, e1 = edges[:, 0], edges[:, 1]
    normal = np.stack(
        [
            e0[:, y] * e1[:, z] - e0[:, z] * e1[:, y],
            e0[:, z] * e1[:, x] - e0[:, x] * e1[:, z],
            e0[:, x] * e1[:, y] - e0[:, y] * e1[:, x],
        ],
        axis=1,
    )
    positive = normal > 0.0
    nearest = np.where(positive, -half - v[:, 0], half - v[:, 0])
    farthest = np.where(positive, half - v[:, 0], -half - v[:, 0])
    near = normal[:, 0] * nearest[:, 0] + normal[:, 1] * nearest[:, 1] + normal[:, 2] * nearest[:, 2]
    far = normal[:, 0] * farthest[:, 0] + normal[:, 1] * farthest[:, 1] + normal[:, 2] * farthest[:, 2]
    return hit & (near <= 0.0) & (far >= 0.0)
