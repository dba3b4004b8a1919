"""Triangles rasterised in 2D: which triangle covers each pixel (Pillow draws them, in C,
by the usual rule that a pixel whose centre is inside belongs to the triangle), and the
barycentric weights of a point in a triangle."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def triangle_ids(x: np.ndarray, y: np.ndarray, faces: np.ndarray, size: int, order: np.ndarray | None = None) -> np.ndarray:
    """(size, size) int32: the index of the triangle over each pixel, -1 where none is.

    ``x``, ``y``: each vertex's position in pixels (0 at the first pixel's centre). Drawn in
    ``order`` (default: as listed), so where triangles overlap the last drawn one wins.
    """
    owner = Image.new("I", (size, size), -1)
    draw = ImageDraw.Draw(owner)
    indices = range(len(faces)) if order is None else order.tolist()
    for index in indices:
        a, b, c = faces[index]
        draw.polygon([(x[a], y[a]), (x[b], y[b]), (x[c], y[c])], fill=int(index))
    return np.asarray(owner, dtype=np.int32)


def barycentric(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights of each triangle's corners at (x, y); a degenerate triangle's first corner
    takes all the weight."""
    (x0, x1, x2), (y0, y1, y2) = xs.T, ys.T
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    degenerate = np.abs(area) <= 1e-12
    safe = np.where(degenerate, 1.0, area)
    w1 = np.where(degenerate, 0.0, ((x - x0) * (y2 - y0) - (x2 - x0) * (y - y0)) / safe)
    w2 = np.where(degenerate, 0.0, ((x1 - x0) * (y - y0) - (x - x0) * (y1 - y0)) / safe)
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)
