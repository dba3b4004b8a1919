"""What a source camera sees of a mesh, pixel by pixel: the front triangle at each pixel's
centre and its point there (a z-buffer of our own on the engine's rasteriser), to tell
which pixels of Blender's render show a surface that faces the camera."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openlrm_blender.engine.camera import SourceCamera
from openlrm_blender.engine.geometry.normals import unit
from openlrm_blender.engine.geometry.raster import touches


@dataclass
class SourceView:
    """The mesh's front surface at each pixel its triangles cover."""

    size: int
    pixel: np.ndarray  # flat indices, row * size + column
    triangle: np.ndarray
    points: np.ndarray  # (n, 3)
    normals: np.ndarray  # (n, 3) unit, interpolated from the per-vertex normals given

    def image(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-pixel ``values`` laid out as a (size, size, ...) image."""
        out = np.full((self.size * self.size, *values.shape[1:]), fill, dtype=values.dtype)
        out[self.pixel] = values
        return out.reshape(self.size, self.size, *values.shape[1:])


def source_view(
    vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, camera: SourceCamera, size: int
) -> SourceView:
    u, v, depth = camera.project(vertices)
    x, y = u * size - 0.5, v * size - 0.5
    nearest = np.full(size * size, np.inf)
    owner = np.full(size * size, -1)
    weights = np.zeros((size * size, 3))
    for touched in touches(x, y, faces, size, 0.0):
        at = np.einsum("nk,nk->n", touched.weights, depth[faces[touched.triangle]])
        order = np.lexsort((at, touched.pixel))  # nearest first within each pixel
        pixel = touched.pixel[order]
        first = np.r_[True, pixel[1:] != pixel[:-1]]
        chosen = order[first]
        pixel = touched.pixel[chosen]
        closer = at[chosen] < nearest[pixel]
        pixel, chosen = pixel[closer], chosen[closer]
        nearest[pixel], owner[pixel], weights[pixel] = at[chosen], touched.triangle[chosen], touched.weights[chosen]
    pixel = np.flatnonzero(owner >= 0)
    corners = faces[owner[pixel]]
    points = np.einsum("nk,nkd->nd", weights[pixel], vertices[corners].astype(np.float64))
    point_normals = unit(np.einsum("nk,nkd->nd", weights[pixel], normals[corners].astype(np.float64)))
    return SourceView(size, pixel, owner[pixel], points, point_normals)
