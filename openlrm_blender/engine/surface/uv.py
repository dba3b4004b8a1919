"""UV unwrapping with xatlas: charts cut along the surface's creases and packed into a
square texture with padding between them (for filtering and mip-maps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EngineError

CHARTS = 256  # about this many charts at least: none larger than 1/256 of the surface


@dataclass
class Unwrapped:
    vertices: np.ndarray  # (V', 3) float32: vertices split where charts meet
    faces: np.ndarray  # (F, 3) int32
    uvs: np.ndarray  # (V', 2) float32 in [0, 1], v up (glTF flips it on writing)
    source: np.ndarray  # (V',) int: the vertex of the input mesh each one copies


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int = 4) -> Unwrapped:
    try:
        import xatlas
    except ImportError:
        raise EngineError("a textured mesh needs the xatlas package, which this build lacks") from None
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, dtype=np.float32), np.ascontiguousarray(faces, dtype=np.uint32))
    charts = xatlas.ChartOptions()
    corners = vertices[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum()
    # Unbounded charts grow for long (13.6 s for a 50k-face sphere, against 1 s), and the
    # optimising iterations after growth cost more than they give (2.9 s against 1.7 s).
    charts.max_chart_area = area / CHARTS
    charts.max_iterations = 0
    pack = xatlas.PackOptions()
    pack.resolution = texture_size
    pack.padding = padding
    pack.bilinear = True
    atlas.generate(chart_options=charts, pack_options=pack)
    source, indices, uvs = atlas[0]
    return Unwrapped(
        vertices=vertices[source].astype(np.float32),
        faces=indices.astype(np.int32),
        uvs=uvs.astype(np.float32),
        source=source.astype(np.int64),
    )


def weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The copies a UV layout made of a vertex (one for each chart it borders) made one
    again: vertices, faces, and the first copy each welded vertex came from. Where the
    layout is kept per face corner (a Blender mesh's UV map), the surface stays connected,
    so smooth shading, sculpting and remeshing see no seam."""
    welded, first, inverse = np.unique(vertices, axis=0, return_index=True, return_inverse=True)
    return welded, inverse.reshape(-1)[faces].astype(np.int32), first
