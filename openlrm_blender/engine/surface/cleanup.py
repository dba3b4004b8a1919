"""Mesh clean-up after marching cubes: small disconnected pieces (floaters) dropped, and an
optional Taubin smoothing that evens out the grid's staircase without shrinking the
object (plain Laplacian smoothing would)."""

from __future__ import annotations

import numpy as np

# Taubin's pair of steps: a shrinking one, then a slightly larger inflating one.
TAUBIN_LAMBDA, TAUBIN_MU = 0.5, -0.53


def piece_labels(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """For each vertex, the smallest vertex index of its connected piece (union-find by
    pointer jumping, vectorised over the edges)."""
    parent = np.arange(vertex_count)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    while True:
        low = np.minimum(parent[edges[:, 0]], parent[edges[:, 1]])
        before = parent.copy()
        np.minimum.at(parent, parent[edges[:, 0]], low)
        np.minimum.at(parent, parent[edges[:, 1]], low)
        while not np.array_equal(parent, parent[parent]):
            parent = parent[parent]
        if np.array_equal(parent, before):
            return parent


def keep_vertices(
    vertices: np.ndarray, faces: np.ndarray, keep_faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept faces and only the vertices they use, renumbered; also which old vertex
    each new one is."""
    faces = faces[keep_faces]
    used = np.unique(faces)
    renumber = np.full(len(vertices), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    return vertices[used], renumber[faces].astype(np.int32), used


def remove_small_pieces(
    vertices: np.ndarray, faces: np.ndarray, min_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drops every connected piece with fewer than ``min_share`` of all faces (the largest
    piece always stays); gives vertices, faces and the old index of each kept vertex."""
    if min_share <= 0 or len(faces) == 0:
        return vertices, faces, np.arange(len(vertices))
    labels = piece_labels(faces, len(vertices))[faces[:, 0]]
    pieces, counts = np.unique(labels, return_counts=True)
    kept = pieces[(counts >= min_share * len(faces)) | (counts == counts.max())]
    return keep_vertices(vertices, faces, np.isin(labels, kept))


def taubin_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Each iteration moves every vertex towards its neighbours' mean, then back out."""
    if iterations <= 0:
        return vertices
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    degree = np.bincount(edges[:, 0], minlength=len(vertices)).astype(np.float64)[:, None]
    points = vertices.astype(np.float64)
    for _ in range(iterations):
        for factor in (TAUBIN_LAMBDA, TAUBIN_MU):
            total = np.zeros_like(points)
            np.add.at(total, edges[:, 0], points[edges[:, 1]])
            mean = total / np.maximum(degree, 1.0)
            points = points + factor * (mean - points) * (degree > 0)
    return points.astype(vertices.dtype)
