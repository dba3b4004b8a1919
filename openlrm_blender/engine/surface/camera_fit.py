"""A camera for a model that takes none (TripoSG: its input is the object cropped with a margin).

The shape is seen orthographically along the front axis (+Y), and the view is fitted so that
its silhouette covers the photo's mask: first from the two bounding boxes, then refined by
the overlap (intersection over union) of silhouette and mask. The silhouette is drawn once,
in the shape's own x-z plane; each candidate view only maps the canvas's pixels into it.
"""

from __future__ import annotations

import numpy as np

from ..camera import OrthographicCamera
from ..geometry.raster import touches

FIT_PIXELS = 256  # the canvas's side while fitting
SILHOUETTE_PIXELS = 512  # the silhouette's side in the shape's plane
# Coordinate search: steps of the scale's logarithm and of the offsets (canvas fractions).
SEARCH_STEPS = (0.08, 0.04, 0.02, 0.01, 0.005, 0.0025)


def downsampled_mask(alpha: np.ndarray, side: int = FIT_PIXELS) -> np.ndarray:
    """The mask (alpha over one half) on a side x side grid of the canvas, by area."""
    height, width = alpha.shape
    rows = (np.arange(side) + 0.5) * height / side
    columns = (np.arange(side) + 0.5) * width / side
    return alpha[rows.astype(int)][:, columns.astype(int)] > 0.5


class Silhouette:
    """The shape's outline seen along +Y: which points of its x-z plane it covers."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, side: int = SILHOUETTE_PIXELS) -> None:
        self.low = vertices[:, [0, 2]].min(axis=0)
        self.extent = float((vertices[:, [0, 2]].max(axis=0) - self.low).max()) * (1 + 2 / side)
        self.low = self.low - self.extent / side
        x = (vertices[:, 0] - self.low[0]) / self.extent * side - 0.5
        y = (vertices[:, 2] - self.low[1]) / self.extent * side - 0.5
        covered = np.zeros(side * side, dtype=bool)
        for touched in touches(x, y, faces, side, 0.0):
            covered[touched.pixel] = True
        self.image = covered.reshape(side, side)  # [z row, x column], z upward
        self.side = side

    def seen_by(self, camera: OrthographicCamera, side: int) -> np.ndarray:
        """(side, side): the silhouette on the canvas of ``camera`` (canvas row 0 at the top)."""
        centres = (np.arange(side) + 0.5) / side
        x = (centres - camera.u0) / camera.scale
        z = (camera.v0 - centres) / camera.scale
        columns = np.floor((x - self.low[0]) / self.extent * self.side).astype(int)
        rows = np.floor((z - self.low[1]) / self.extent * self.side).astype(int)
        inside_x, inside_z = (columns >= 0) & (columns < self.side), (rows >= 0) & (rows < self.side)
        seen = self.image[np.clip(rows, 0, self.side - 1)][:, np.clip(columns, 0, self.side - 1)]
        return seen & inside_z[:, None] & inside_x[None, :]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def fit_camera(vertices: np.ndarray, faces: np.ndarray, alpha: np.ndarray) -> tuple[OrthographicCamera, float]:
    """The orthographic front view of the shape (in our frame) whose silhouette best covers
    the canvas's mask (``alpha``), and how well: the overlap, 1 for a perfect match."""
    mask = downsampled_mask(alpha)
    rows, columns = np.nonzero(mask)
    if len(rows) == 0:
        return OrthographicCamera(1.0), 0.0
    silhouette = Silhouette(vertices, faces)
    # Bounding boxes: the mask's (canvas fractions) against the shape's (scene units).
    u_low, u_high = columns.min() / FIT_PIXELS, (columns.max() + 1) / FIT_PIXELS
    v_low, v_high = rows.min() / FIT_PIXELS, (rows.max() + 1) / FIT_PIXELS
    (x_low, z_low), (x_high, z_high) = vertices[:, [0, 2]].min(axis=0), vertices[:, [0, 2]].max(axis=0)
    scale = float(np.sqrt((u_high - u_low) / max(x_high - x_low, 1e-9) * (v_high - v_low) / max(z_high - z_low, 1e-9)))
    u0 = (u_low + u_high) / 2 - scale * (x_low + x_high) / 2
    v0 = (v_low + v_high) / 2 + scale * (z_low + z_high) / 2
    best = OrthographicCamera(scale, u0, v0)
    score = overlap(silhouette.seen_by(best, FIT_PIXELS), mask)
    for step in SEARCH_STEPS:
        improved = True
        while improved:
            improved = False
            for change in ((step, 0, 0), (-step, 0, 0), (0, step, 0), (0, -step, 0), (0, 0, step), (0, 0, -step)):
                factor = float(np.exp(change[0]))
                # The scale changes about the silhouette's centre on the canvas, so it stays put.
                centre_u, centre_v = (
                    best.u0 + best.scale * (x_low + x_high) / 2,
                    best.v0 - best.scale * (z_low + z_high) / 2,
                )
                candidate = OrthographicCamera(
                    best.scale * factor,
                    centre_u - best.scale * factor * (x_low + x_high) / 2 + change[1],
                    centre_v + best.scale * factor * (z_low + z_high) / 2 + change[2],
                )
                found = overlap(silhouette.seen_by(candidate, FIT_PIXELS), mask)
                if found > score + 1e-6:
                    best, score, improved = candidate, found, True
    return best, score
