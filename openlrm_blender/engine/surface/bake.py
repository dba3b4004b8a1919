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
from PIL import Image, ImageDraw

from ..result import to_u8

_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def texel_points(
    vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and 3D points of the texels the triangles cover in UV space.

    Pillow rasterises each triangle's index into a map (in C, by the usual rule that a
    texel whose centre is inside belongs to the triangle); each covered texel's point is
    then found from its triangle's barycentric weights, clamped onto the triangle.
    """
    x = uvs[:, 0].astype(np.float64) * size - 0.5
    y = (1.0 - uvs[:, 1].astype(np.float64)) * size - 0.5
    owner = Image.new("I", (size, size), -1)
    draw = ImageDraw.Draw(owner)
    for index, (a, b, c) in enumerate(faces.tolist()):
        draw.polygon([(x[a], y[a]), (x[b], y[b]), (x[c], y[c])], fill=index)
    triangles = np.asarray(owner, dtype=np.int32)
    rows, columns = np.nonzero(triangles >= 0)
    triangle = triangles[rows, columns]
    corners = faces[triangle]
    weights = _barycentric(x[corners], y[corners], columns.astype(np.float64), rows.astype(np.float64))
    weights = np.clip(weights, 0.0, None)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    points = np.einsum("nk,nkd->nd", weights, vertices[corners].astype(np.float64))
    return rows, columns, points.astype(np.float32)


def _barycentric(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights of each triangle's corners at (x, y); a degenerate triangle's first corner
    takes all the weight."""
    (x0, x1, x2), (y0, y1, y2) = xs.T, ys.T
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    degenerate = np.abs(area) <= 1e-12
    safe = np.where(degenerate, 1.0, area)
    w1 = np.where(degenerate, 0.0, ((x - x0) * (y2 - y0) - (x2 - x0) * (y - y0)) / safe)
    w2 = np.where(degenerate, 0.0, ((x1 - x0) * (y - y0) - (x - x0) * (y1 - y0)) / safe)
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)


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
    colour_at: Callable[[np.ndarray], np.ndarray],
    padding: int = 4,
    rounding: str = "floor",
) -> np.ndarray:
    """(size, size, 3) uint8 sRGB: ``colour_at`` (points -> sRGB in [0, 1]) at every texel,
    made 8-bit as the model family's export does (``result.to_u8``)."""
    rows, columns, points = texel_points(vertices, faces, uvs, size)
    image = np.zeros((size, size, 3), dtype=np.float32)
    covered = np.zeros((size, size), dtype=bool)
    image[rows, columns] = to_u8(colour_at(points), rounding)
    covered[rows, columns] = True
    return np.clip(np.round(dilate(image, covered, padding + 2)), 0, 255).astype(np.uint8)
