"""Closed test meshes made in NumPy alone (no PyTorch: Blender's own Python and its
processes use them where the engine's marching cubes, a PyTorch one, cannot run)."""

from __future__ import annotations

import numpy as np


def ellipsoid(radii: tuple[float, float, float], rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed, consistently wound (outward) latitude-longitude ellipsoid: float32 vertices,
    int32 faces, ``2 * segments * (rings - 1)`` triangles."""
    polar = np.linspace(0.0, np.pi, rings + 1)[1:-1]
    around = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    theta, phi = np.meshgrid(polar, around, indexing="ij")
    ring_points = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring_points.reshape(-1, 3), [[0.0, 0.0, -1.0]]])
    vertices = (unit * np.asarray(radii)).astype(np.float32)
    south = len(vertices) - 1
    ring = np.arange(rings - 1)[:, None] * segments + 1
    column, following = np.arange(segments)[None], (np.arange(segments)[None] + 1) % segments
    top = np.stack(
        [np.zeros(segments, dtype=np.int64), 1 + np.arange(segments), 1 + (np.arange(segments) + 1) % segments], 1
    )
    here, next_here = ring[:-1] + column, ring[:-1] + following
    below, next_below = ring[1:] + column, ring[1:] + following
    band = np.concatenate([
        np.stack([here, below, next_below], -1).reshape(-1, 3),
        np.stack([here, next_below, next_here], -1).reshape(-1, 3),
    ])  # fmt: skip
    last = ring[-1, 0] + np.arange(segments)
    bottom = np.stack([last, np.full(segments, south), ring[-1, 0] + (np.arange(segments) + 1) % segments], 1)
    return vertices, np.concatenate([top, band, bottom]).astype(np.int32)
