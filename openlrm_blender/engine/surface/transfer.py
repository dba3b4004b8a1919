"""Colours carried from a surface to another lying on it (a remeshed copy): each new point
takes the colour of the old surface's point nearest to it. The search for that point is the
caller's (Blender's BVH tree in the remesh process); here, what the point's triangle holds
there: its vertices' colours, or its texture's."""

from __future__ import annotations

import numpy as np

from ..result import Mesh


def triangle_weights(vertices: np.ndarray, faces: np.ndarray, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 3) barycentric weights of ``points`` (each on, or nearest to, its triangle of
    ``triangles``), clipped into the triangle so a point off it takes its nearest edge's
    colours rather than extrapolated ones."""
    a, b, c = (vertices[faces[triangles, k]].astype(np.float64) for k in range(3))
    ab, ac, ap = b - a, c - a, points.astype(np.float64) - a
    d00, d01, d11 = (ab * ab).sum(1), (ab * ac).sum(1), (ac * ac).sum(1)
    d20, d21 = (ap * ab).sum(1), (ap * ac).sum(1)
    area = d00 * d11 - d01 * d01
    safe = np.where(np.abs(area) > 1e-30, area, 1.0)  # a degenerate triangle: its first corner's colour
    w1 = np.where(np.abs(area) > 1e-30, (d11 * d20 - d01 * d21) / safe, 0.0)
    w2 = np.where(np.abs(area) > 1e-30, (d00 * d21 - d01 * d20) / safe, 0.0)
    weights = np.clip(np.stack([1.0 - w1 - w2, w1, w2], axis=1), 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Samples of (H, W, C) at image coordinates in [0, 1] (pixel centres at (i + 0.5) / side); 0 outside.
    NumPy: the remesh process has no PyTorch (the photo stage samples on its device)."""
    height, width = image.shape[:2]
    x, y = u * width - 0.5, v * height - 0.5
    inside = (x > -1) & (x < width) & (y > -1) & (y < height)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))  # zeros round the edge

    def at(dy: int, dx: int) -> np.ndarray:
        rows, columns = np.clip(y0 + dy + 1, 0, height + 1), np.clip(x0 + dx + 1, 0, width + 1)
        return padded[rows, columns]

    value = (at(0, 0) * (1 - fx) + at(0, 1) * fx) * (1 - fy) + (at(1, 0) * (1 - fx) + at(1, 1) * fx) * fy
    return np.where(inside[:, None], value, 0.0)


def colours_at(mesh: Mesh, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB in [0, 1]: what ``mesh`` shows at ``points`` on its ``triangles``: its
    texture where it has one (the 8-bit texels, bilinear, as a viewer filters them), else
    its vertices' 8-bit colours blended."""
    weights = triangle_weights(mesh.vertices, mesh.faces, triangles, points)
    corners = mesh.faces[triangles]
    if mesh.textured:
        uv = np.einsum("nk,nkd->nd", weights, mesh.uvs[corners].astype(np.float64))
        # Texture rows run top to bottom, UV v bottom to top.
        return bilinear(mesh.texture.astype(np.float64) / 255.0, uv[:, 0], 1.0 - uv[:, 1])
    return np.einsum("nk,nkd->nd", weights, mesh.colours_u8[corners].astype(np.float64)) / 255.0
