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

from .result import to_u8

CANDIDATES_PER_CHUNK = 1 << 22  # (texel, triangle) pairs tested at once
EDGE_TOLERANCE = 1e-6
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def texel_points(
    vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and 3D points of the texels whose centres lie in a triangle's UVs."""
    x = uvs[:, 0].astype(np.float64) * size - 0.5
    y = (1.0 - uvs[:, 1].astype(np.float64)) * size - 0.5
    corners_x, corners_y = x[faces], y[faces]  # (F, 3)
    left = np.clip(np.ceil(corners_x.min(axis=1)), 0, size - 1).astype(np.int64)
    right = np.clip(np.floor(corners_x.max(axis=1)), 0, size - 1).astype(np.int64)
    top = np.clip(np.ceil(corners_y.min(axis=1)), 0, size - 1).astype(np.int64)
    bottom = np.clip(np.floor(corners_y.max(axis=1)), 0, size - 1).astype(np.int64)
    widths, heights = np.maximum(right - left + 1, 0), np.maximum(bottom - top + 1, 0)
    counts = widths * heights
    rows, columns, points = [], [], []
    ends = np.cumsum(counts)
    start = 0
    while start < len(faces):
        stop = int(np.searchsorted(ends, ends[start] - counts[start] + CANDIDATES_PER_CHUNK, side="right"))
        stop = max(stop, start + 1)
        chunk = np.arange(start, stop)
        triangle = np.repeat(chunk, counts[chunk])
        offset = np.arange(len(triangle)) - np.repeat(ends[chunk] - counts[chunk] - (ends[start] - counts[start]), counts[chunk])
        column = left[triangle] + offset % widths[triangle]
        row = top[triangle] + offset // widths[triangle]
        weights = _barycentric(corners_x[triangle], corners_y[triangle], column, row)
        inside = (weights >= -EDGE_TOLERANCE).all(axis=1)
        triangle, weights = triangle[inside], weights[inside]
        rows.append(row[inside])
        columns.append(column[inside])
        points.append(np.einsum("nk,nkd->nd", weights, vertices[faces[triangle]].astype(np.float64)))
        start = stop
    return np.concatenate(rows), np.concatenate(columns), np.concatenate(points).astype(np.float32)


def _barycentric(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights of each triangle's corners at (x, y); degenerate triangles get none."""
    (x0, x1, x2), (y0, y1, y2) = xs.T, ys.T
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    safe = np.where(np.abs(area) > 1e-12, area, np.inf)
    w1 = ((x - x0) * (y2 - y0) - (x2 - x0) * (y - y0)) / safe
    w2 = ((x1 - x0) * (y - y0) - (x - x0) * (y1 - y0)) / safe
    weights = np.stack([1.0 - w1 - w2, w1, w2], axis=1)
    weights[np.isinf(safe)] = -1.0
    return weights


def dilate(image: np.ndarray, covered: np.ndarray, steps: int) -> np.ndarray:
    """Grows the covered colours outwards ``steps`` texels (each new texel the mean of its
    covered neighbours), then fills what is left with the mean colour."""
    image, covered = image.astype(np.float32), covered.copy()
    for _ in range(steps):
        padded = np.pad(image * covered[..., None], ((1, 1), (1, 1), (0, 0)))
        weight = np.pad(covered.astype(np.float32), 1)
        total = sum(padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx] for dy, dx in _NEIGHBOURS)
        count = sum(weight[1 + dy : weight.shape[0] - 1 + dy, 1 + dx : weight.shape[1] - 1 + dx] for dy, dx in _NEIGHBOURS)
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
) -> np.ndarray:
    """(size, size, 3) uint8 sRGB: ``colour_at`` (points -> sRGB in [0, 1]) at every texel."""
    rows, columns, points = texel_points(vertices, faces, uvs, size)
    image = np.zeros((size, size, 3), dtype=np.float32)
    covered = np.zeros((size, size), dtype=bool)
    image[rows, columns] = to_u8(colour_at(points))
    covered[rows, columns] = True
    return np.clip(np.round(dilate(image, covered, 2 * padding)), 0, 255).astype(np.uint8)
