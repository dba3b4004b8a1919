"""Quadric decimation to a face budget (fast-simplification's, which keeps the surface's
shape where it matters and spends faces on curvature)."""

from __future__ import annotations

import numpy as np

from ..errors import EngineError


def simplify(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``target_faces`` faces (never more); a mesh already within it stays as it is."""
    if target_faces <= 0 or len(faces) <= target_faces:
        return vertices, faces
    try:
        import fast_simplification
    except ImportError:
        raise EngineError("simplifying needs the fast-simplification package, which this build lacks") from None
    points, triangles = fast_simplification.simplify(vertices, faces, target_count=target_faces)
    return points.astype(np.float32), triangles.astype(np.int32)
