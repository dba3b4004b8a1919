"""The colour texture: every texel of a chart is the colour at its own 3D point on the
surface (the colour field queried there, as vertex colours are, with the photo where it
shows the point, so the texture carries more detail than the vertices could).

A chart's texels are all that a viewer's bilinear filtering can read for a point of the
chart: those within ``CHART_REACH`` of its triangles, its border's included, each the
colour of the chart's point nearest to it. Colours are then grown further into the padding
between charts, and the rest of the image takes their mean, so filtering and mip-maps never
mix in the background or another chart's colours.

Image rows run top to bottom (row 0 is the image's top, as PNG stores it); UV v runs
bottom to top (Blender's convention): texel (row, column) is at u = (column + 0.5) / size,
v = 1 - (row + 0.5) / size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry.normals import face_normals, unit
from ..geometry.raster import nearest_triangles
from ..result import to_u8

_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))
# Bilinear filtering at a point reads the four texels round it, whose centres lie within
# a texel's diagonal of it: every texel that close to a chart is the chart's own.
CHART_REACH = 1.5


@dataclass
class Texels:
    """The texels of the charts and the surface under each."""

    rows: np.ndarray
    columns: np.ndarray
    points: np.ndarray  # (n, 3) float32: the chart's point nearest to each texel's centre
    normals: np.ndarray  # (n, ..., 3) float32 unit: the surface's normals there, as many as each vertex has
    own: np.ndarray  # (n, 3) float32 unit: the normal of the triangle the point is on

    def judged_normals(self) -> np.ndarray:
        """(n, K + 1, 3): the surface's normals at each texel and its triangle's own, the best
        of which says how squarely a camera sees the texel's point. Where the surface steps,
        a riser's large faces turn the normals of its corners away from a camera that the
        narrow faces along the step face: judged by its corners alone, a face the camera
        sees squarely would take none of its photo, a line along every step."""
        return np.concatenate([self.normals.reshape(len(self.points), -1, 3), self.own[:, None]], axis=1)


def texel_points(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, normals: np.ndarray, size: int) -> Texels:
    """Every texel within ``CHART_REACH`` of a triangle in UV space, with the surface point
    (and its normals, from the per-vertex ``normals`` (V, ..., 3)) of the nearest triangle's point."""
    x = uvs[:, 0].astype(np.float64) * size - 0.5
    y = (1.0 - uvs[:, 1].astype(np.float64)) * size - 0.5
    found = nearest_triangles(x, y, faces, size, CHART_REACH)
    rows, columns = np.divmod(found.pixel, size)
    corners = faces[found.triangle]
    points = np.einsum("nk,nkd->nd", found.weights, vertices[corners].astype(np.float64))
    texel_normals = unit(np.einsum("nk,nk...->n...", found.weights, normals[corners].astype(np.float64)))
    own = unit(face_normals(vertices, faces))[found.triangle]
    return Texels(rows, columns, points.astype(np.float32), texel_normals.astype(np.float32), own.astype(np.float32))


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
    normals: np.ndarray,
    size: int,
    colour_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    padding: int = 4,
    rounding: str = "floor",
) -> np.ndarray:
    """(size, size, 3) uint8 sRGB: ``colour_at`` (points and their unit normals -> sRGB in
    [0, 1]) at every texel of the charts, made 8-bit as the model family's export does
    (``result.to_u8``). ``normals`` (V, ..., 3): per vertex, of the surface before it was cut
    into charts, so a chart's border faces the way the surface there does; ``colour_at`` gets
    them at each texel with its triangle's own after them (``Texels.judged_normals``)."""
    texels = texel_points(vertices, faces, uvs, normals, size)
    image = np.zeros((size, size, 3), dtype=np.float32)
    covered = np.zeros((size, size), dtype=bool)
    image[texels.rows, texels.columns] = to_u8(colour_at(texels.points, texels.judged_normals()), rounding)
    covered[texels.rows, texels.columns] = True
    return np.clip(np.round(dilate(image, covered, padding + 2)), 0, 255).astype(np.uint8)
