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


def summed(indices: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """(count, D): ``values`` (N, D) summed into the rows ``indices`` (N,) name (np.add.at's
    result, by bincount: many times faster)."""
    return np.stack(
        [np.bincount(indices, weights=values[:, d], minlength=count) for d in range(values.shape[1])], axis=1
    )


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted normals of the faces around each vertex, unit length."""
    per_face = face_normals(vertices, faces)
    normals = summed(faces.ravel(), np.repeat(per_face, 3, axis=0), len(vertices))
    return unit(normals).astype(np.float32)


def own_and_neighbourhood_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 2, 3): each vertex's normal, and its normal averaged with its neighbours' (the
    surface's way at the scale of a grid step). Marching cubes on a steep field leaves a
    staircase whose risers face away from a camera that the surface round them faces; the
    steps of a surface turning away can still face it."""
    own = vertex_normals(vertices, faces)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    total = own + summed(ends, own[np.concatenate([edges[:, 1], edges[:, 0]])], len(vertices))
    return np.stack([own, unit(total).astype(np.float32)], axis=1)
