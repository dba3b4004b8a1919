"""The colour texture: every texel a chart covers is the colour field at its own 3D point on
the surface (queried in the triplanes, as vertex colours are, so the texture carries more
detail than the vertices could), then colours are grown into the padding so filtering
and mip-maps never reach the empty background.

Image rows run top to bottom (row 0 is the image's top, as PNG stores it); UV v runs
bottom to top (Blender's convention): texel (row, column) is at u = (column + 0.5) / size,
v = 1 - (row + 0.5) / size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ..geometry.normals import unit, vertex_normals
from ..geometry.raster import barycentric, triangle_ids
from ..result import to_u8

_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def texel_points(
    vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int, normals: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Rows, columns and 3D points of the texels the triangles cover in UV space (and, given
    per-vertex ``normals``, each texel's normal interpolated the same way).

    Each triangle's index is rasterised into a map; each covered texel's point is then
    found from its triangle's barycentric weights, clamped onto the triangle.
    """
    x = uvs[:, 0].astype(np.float64) * size - 0.5
    y = (1.0 - uvs[:, 1].astype(np.float64)) * size - 0.5
    triangles = triangle_ids(x, y, faces, size)
    rows, columns = np.nonzero(triangles >= 0)
    triangle = triangles[rows, columns]
    corners = faces[triangle]
    weights = barycentric(x[corners], y[corners], columns.astype(np.float64), rows.astype(np.float64))
    weights = np.clip(weights, 0.0, None)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    points = np.einsum("nk,nkd->nd", weights, vertices[corners].astype(np.float64))
    if normals is None:
        return rows, columns, points.astype(np.float32)
    texel_normals = unit(np.einsum("nk,nkd->nd", weights, normals[corners].astype(np.float64)))
    return rows, columns, points.astype(np.float32), texel_normals.astype(np.float32)


def dilate(image: np.ndarray, covered: np.ndarray, steps: int) -> np.ndarray:
    """Grows the covered colours outwards ``steps`` texels (each new texel the mean of its
    covered neighbours), then fills what is left with the mean colour."""
    image, covered = image.astype(np.float32), covered.copy()
    height, width = covered.shape
    for _ in range(steps):
        padded = np.pad(image * covered[..., None], ((1, 1), (1, 1), (0, 0)))
        weight = np.pad(covered.astype(np.float32), 1)
        total = sum(padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _NEIGHBOURS)
        count = sum(weight[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in _NEIGHBOURS)
        grow = ~covered & (count > 0)
        if not grow.any():
            break
        image[grow] = total[grow] / count[grow][:, None]
        covered |= grow
    if covered.any():
        image[~covered] = image[covered].mean(axis=0)
    return image


def bake_texture(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    size: int,
    colour_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    padding: int = 4,
    rounding: str = "floor",
) -> np.ndarray:
    """(size, size, 3) uint8 sRGB: ``colour_at`` (points and their unit normals -> sRGB in
    [0, 1]) at every texel, made 8-bit as the model family's export does (``result.to_u8``)."""
    rows, columns, points, normals = texel_points(vertices, faces, uvs, size, vertex_normals(vertices, faces))
    image = np.zeros((size, size, 3), dtype=np.float32)
    covered = np.zeros((size, size), dtype=bool)
    image[rows, columns] = to_u8(colour_at(points, normals), rounding)
    covered[rows, columns] = True
    return np.clip(np.round(dilate(image, covered, padding + 2)), 0, 255).astype(np.uint8)
