"""Triangles drawn onto a square grid of pixels (a texture's texels): each pixel within reach
of a triangle, with the point of the triangle nearest to the pixel's centre. Pixel (row,
column) has its centre at (x, y) = (column, row).

A reach of about a pixel makes the drawing conservative: every pixel the triangle touches
is found, not only those whose centre it covers, so a chart of a texture carries its own
colours right to its border. (The pixel centres a triangle covers, the depth test's and the
silhouettes', are ``coverage``'s, on the photo stage's device.) NumPy only: the options
reach this module through the bake, in Blender's own process, which has no PyTorch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # not imported: see above
    import torch

    Values = np.ndarray | torch.Tensor

CANDIDATES_PER_CHUNK = 1 << 22  # pixel-triangle pairs looked at in one go


@dataclass
class Touches:
    """Pixels and the triangles within reach of them, one pair per row."""

    triangle: np.ndarray  # (n,) the triangle's index
    pixel: np.ndarray  # (n,) the pixel's flat index, row * size + column
    distance: np.ndarray  # (n,) from the pixel's centre to the triangle, in pixels (0 inside)
    weights: np.ndarray  # (n, 3) barycentric weights of the triangle's point nearest the centre


def _nearest_on_triangles(
    xs: np.ndarray, ys: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from points (T, K) to triangles (T, 3) and the weights (T, K, 3) of each
    triangle's nearest point: the point itself when inside, else the nearest on an edge."""
    weights = barycentric(xs[:, None, :], ys[:, None, :], px, py)
    inside = (weights >= 0.0).all(axis=-1)
    distance = np.where(inside, 0.0, np.inf)
    for first, second in ((0, 1), (1, 2), (2, 0)):
        ax, ay = xs[:, first, None], ys[:, first, None]
        ex, ey = xs[:, second, None] - ax, ys[:, second, None] - ay
        length = np.maximum(ex * ex + ey * ey, 1e-24)
        along = np.clip(((px - ax) * ex + (py - ay) * ey) / length, 0.0, 1.0)
        gap = np.hypot(ax + along * ex - px, ay + along * ey - py)
        closer = ~inside & (gap < distance)
        distance = np.where(closer, gap, distance)
        on_edge = np.zeros_like(weights)
        on_edge[..., first], on_edge[..., second] = 1.0 - along, along
        weights = np.where(closer[..., None], on_edge, weights)
    return distance, weights


def touches(x: np.ndarray, y: np.ndarray, faces: np.ndarray, size: int, reach: float) -> Iterator[Touches]:
    """Every pixel within ``reach`` pixels of each triangle (``x``, ``y``: each vertex's
    position in pixels), in chunks. Triangles are taken in groups of the same extent, so
    each group is one array operation."""
    xs, ys = x[faces].astype(np.float64), y[faces].astype(np.float64)
    left = np.floor(xs.min(axis=1) - reach).astype(np.int64)
    top = np.floor(ys.min(axis=1) - reach).astype(np.int64)
    extent = (
        np.maximum(np.ceil(xs.max(axis=1) + reach) - left, np.ceil(ys.max(axis=1) + reach) - top).astype(np.int64) + 1
    )
    seen = (left < size) & (top < size) & (left + extent > 0) & (top + extent > 0)
    for side in np.unique(extent[seen]):
        rows, columns = np.divmod(np.arange(side * side), side)
        group = np.nonzero(seen & (extent == side))[0]
        step = max(1, CANDIDATES_PER_CHUNK // (side * side))
        for start in range(0, len(group), step):
            chosen = group[start : start + step]
            px, py = left[chosen, None] + columns, top[chosen, None] + rows
            distance, weights = _nearest_on_triangles(
                xs[chosen], ys[chosen], px.astype(np.float64), py.astype(np.float64)
            )
            near = (distance <= reach) & (px >= 0) & (px < size) & (py >= 0) & (py < size)
            which, _ = np.nonzero(near)
            if len(which):
                yield Touches(chosen[which], (py * size + px)[near], distance[near], weights[near])


def nearest_triangles(x: np.ndarray, y: np.ndarray, faces: np.ndarray, size: int, reach: float) -> Touches:
    """For every pixel within ``reach`` of some triangle, the nearest one (on a tie, the
    first listed) and the weights of its point nearest the pixel's centre."""
    best_distance = np.full(size * size, np.inf)
    best = np.full(size * size, -1, dtype=np.int64)
    for chunk in touches(x, y, faces, size, reach):
        order = np.lexsort((chunk.triangle, chunk.distance, chunk.pixel))
        pixel = chunk.pixel[order]
        first = np.r_[True, pixel[1:] != pixel[:-1]]
        pixel, triangle, distance = pixel[first], chunk.triangle[order][first], chunk.distance[order][first]
        better = (distance < best_distance[pixel]) | ((distance == best_distance[pixel]) & (triangle < best[pixel]))
        best_distance[pixel[better]], best[pixel[better]] = distance[better], triangle[better]
    pixel = np.flatnonzero(best >= 0)
    triangle = best[pixel]
    corners = faces[triangle]
    rows, columns = np.divmod(pixel, size)
    distance, weights = _nearest_on_triangles(
        x[corners].astype(np.float64), y[corners].astype(np.float64), columns[:, None].astype(np.float64),
        rows[:, None].astype(np.float64),
    )  # fmt: skip
    return Touches(triangle, pixel, distance[:, 0], weights[:, 0])


def barycentric(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights (..., 3) of each triangle's corners at (x, y); corners ``xs``, ``ys`` (..., 3)
    broadcast against the points."""
    return np.stack(np.broadcast_arrays(*barycentric_parts(xs, ys, x, y)), axis=-1)


def barycentric_parts(xs: Values, ys: Values, x: Values, y: Values) -> tuple[Values, Values, Values]:
    """``barycentric``'s three weights, for NumPy arrays or PyTorch tensors alike (one formula
    for both: ``coverage`` draws with tensors). A degenerate triangle gives weights that are
    never all at least 0, so no point is inside it."""
    x0, x1, x2 = xs[..., 0], xs[..., 1], xs[..., 2]
    y0, y1, y2 = ys[..., 0], ys[..., 1], ys[..., 2]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    kept = abs(area) > 1e-12
    other = 1.0 * ~kept
    safe = area * kept + other  # the area, or 1 for a degenerate triangle
    w1 = ((x - x0) * (y2 - y0) - (x2 - x0) * (y - y0)) / safe * kept - other  # -1 for a degenerate triangle
    w2 = ((x1 - x0) * (y - y0) - (x - x0) * (y1 - y0)) / safe * kept - other
    return 1.0 - w1 - w2, w1, w2
