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


def own_and_neighbourhood_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 2, 3): each vertex's normal, and its normal averaged with its neighbours' (the
    surface's way at the scale of a grid step). Marching cubes on a steep field leaves a
    staircase whose risers face away from a camera that the surface round them faces; the
    steps of a surface turning away can still face it."""
    own = vertex_normals(vertices, faces)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    total = own.astype(np.float64)
    np.add.at(total, edges[:, 0], own[edges[:, 1]])
    np.add.at(total, edges[:, 1], own[edges[:, 0]])
    return np.stack([own, unit(total).astype(np.float32)], axis=1)
