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


@dataclass(frozen=True)
class OrthographicCamera:
    """A camera looking toward +Y from far away: the canvas shows x (right) and z (up) scaled
    by ``scale`` (canvas widths per scene unit), the scene's origin at (u0, v0). For a model
    that takes no camera (TripoSG): the photo stage fits one to the shape's silhouette."""

    scale: float
    u0: float = 0.5
    v0: float = 0.5
    distance: float = 10.0  # far enough in front of any shape, so every depth is positive

    def towards(self, points: np.ndarray) -> np.ndarray:
        return np.tile([0.0, -1.0, 0.0], (len(points), 1))

    def pixel_size(self, depth: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(depth, dtype=np.float64), 1.0 / self.scale)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = points.astype(np.float64)
        return self.u0 + self.scale * points[:, 0], self.v0 - self.scale * points[:, 2], points[:, 1] + self.distance


Camera = SourceCamera | OrthographicCamera
