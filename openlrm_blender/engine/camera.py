"""The camera a model assumes for its input photo, shared by the model families (each recipe
says which) and the photo stage (which projects the surface through it).

Cameras are in our output frame: they sit on the -Y side of the object looking toward +Y,
with +Z up, so the photo is Blender's front view. Image coordinates u (right) and v (down)
run over [0, 1] across the square canvas the model's input is made from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SourceCamera:
    """A perspective camera at (0, -distance, 0), looking toward +Y."""

    distance: float
    focal: float  # focal length / the image's side (OpenLRM 0.75; TripoSR 0.5 / tan(20 degrees))

    @property
    def position(self) -> np.ndarray:
        return np.array([0.0, -self.distance, 0.0])

    def towards(self, points: np.ndarray) -> np.ndarray:
        """Unit vectors from each point to the camera."""
        towards = self.position - points.astype(np.float64)
        return towards / np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)

    def pixel_size(self, depth: np.ndarray) -> np.ndarray:
        """The width of the canvas's side at each depth, in scene units."""
        return depth / self.focal

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Image coordinates u (right) and v (down), in [0, 1] across the canvas, and depth."""
        points = points.astype(np.float64)
        depth = points[:, 1] + self.distance
        safe = np.where(depth > 1e-6, depth, 1e-6)
        return 0.5 + self.focal * points[:, 0] / safe, 0.5 - self.focal * points[:, 2] / safe, depth
