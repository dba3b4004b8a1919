"""Surface normals of a triangle mesh (counter-clockwise faces seen from outside)."""

from __future__ import annotations

import numpy as np


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each face's normal, its length twice the face's area (float64)."""
    corners = vertices[faces].astype(np.float64)
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def unit(vectors: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(length > 0, length, 1.0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted normals of the faces around each vertex, unit length."""
    per_face, normals = face_normals(vertices, faces), np.zeros((len(vertices), 3))
    for corner in range(3):
        np.add.at(normals, faces[:, corner], per_face)
    return unit(normals).astype(np.float32)
