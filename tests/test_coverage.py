"""The pixel centres each triangle covers (``geometry.coverage``, the depth test's and the
silhouettes' drawing on the run's device): against a brute-force reckoning, and the same
whatever the chunks."""

from __future__ import annotations

import numpy as np
import torch

from openlrm_blender.engine.geometry import coverage
from openlrm_blender.engine.geometry.coverage import covered

SIZE = 48


def triangles(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangles of every size, some off the grid or across its edge, some degenerate."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-10, SIZE + 10, 600), rng.uniform(-10, SIZE + 10, 600)
    faces = rng.integers(0, 600, (500, 3))
    faces[:100] = (faces[:100, :1] + np.arange(3)) % 600  # neighbouring points: mostly small triangles
    faces[100:110, 2] = faces[100:110, 1]  # a repeated corner: a segment
    return x, y, faces


def found(x: np.ndarray, y: np.ndarray, faces: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    pairs = {}
    for triangle, pixel, weights in covered(*(torch.from_numpy(a) for a in (x, y, faces)), SIZE):
        for key, value in zip(zip(triangle.tolist(), pixel.tolist(), strict=True), weights.numpy(), strict=True):
            pairs[key] = value
    return pairs


def test_every_covered_centre_is_found_with_its_weights():
    """A centre is inside when the three edge cross products share a sign (none of the random
    corners puts a centre on an edge); its weights give back the centre."""
    x, y, faces = triangles(0)
    pairs = found(x, y, faces)
    rows, columns = np.divmod(np.arange(SIZE * SIZE), SIZE)
    expected = set()
    for index, corners in enumerate(faces):
        cx, cy = x[corners], y[corners]
        crosses = np.array(
            [
                (cx[(k + 1) % 3] - cx[k]) * (rows - cy[k]) - (cy[(k + 1) % 3] - cy[k]) * (columns - cx[k])
                for k in range(3)
            ]
        )
        inside = (crosses > 0).all(axis=0) | (crosses < 0).all(axis=0)
        expected |= {(index, int(pixel)) for pixel in np.flatnonzero(inside)}
    assert len(expected) > 1000 and set(pairs) == expected
    for (index, pixel), weights in pairs.items():
        assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-12
        corners = faces[index]
        assert abs(weights @ x[corners] - pixel % SIZE) < 1e-9 and abs(weights @ y[corners] - pixel // SIZE) < 1e-9


def test_the_chunks_change_nothing(monkeypatch):
    x, y, faces = triangles(1)
    whole = found(x, y, faces)
    monkeypatch.setattr(coverage, "CPU_CANDIDATES_PER_CHUNK", 7)  # chunks of a triangle or two
    chunked = found(x, y, faces)
    assert set(chunked) == set(whole) and all(np.array_equal(chunked[key], whole[key]) for key in whole)
