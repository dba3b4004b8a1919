"""The camera a model assumes for its input photo, shared by the model families (each recipe
says which) and the photo stage (which projects the surface through it).

Cameras are in our output frame: they sit on the -Y side of the object looking toward +Y,
with +Z up, so the photo is Blender's front view. Image coordinates u (right) and v (down)
run over [0, 1] across the square canvas the model's input is made from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # PyTorch is not imported for the cameras' sake
    import torch

    # NumPy arrays, or PyTorch tensors (the photo stage's, on its device): a camera gives back what it is given.
    Points = np.ndarray | torch.Tensor


def _float64(points: Points) -> Points:
    return points.astype(np.float64) if isinstance(points, np.ndarray) else points.double()


def _rows(row: tuple[float, float, float], points: Points) -> Points:
    """``row`` for each point, of the points' kind (float64)."""
    return _float64(points) * 0.0 + (np.asarray(row) if isinstance(points, np.ndarray) else points.new_tensor(row))


def view_axes(points: Points, azimuth: float) -> tuple[Points, Points]:
    """Each point across a view turned ``azimuth`` degrees about +Z and ahead along it: exactly
    x and y, in the points' precision, for a view not turned."""
    turn = math.radians(azimuth)
    x, y = points[:, 0], points[:, 1]
    return x * math.cos(turn) + y * math.sin(turn), y * math.cos(turn) - x * math.sin(turn)


@dataclass(frozen=True)
class SourceCamera:
    """A perspective camera at (0, -distance, 0), looking toward +Y."""

    distance: float
    focal: float  # focal length / the image's side (OpenLRM 0.75; TripoSR 0.5 / tan(20 degrees))

    @property
    def position(self) -> np.ndarray:
        return np.array([0.0, -self.distance, 0.0])

    def towards(self, points: Points) -> Points:
        """Unit vectors from each point to the camera."""
        towards = _rows(tuple(self.position), points) - _float64(points)
        return towards / ((towards * towards).sum(1) ** 0.5).clip(1e-12)[:, None]

    def pixel_size(self, depth: Points) -> Points:
        """The width of the canvas's side at each depth, in scene units."""
        return depth / self.focal

    def project(self, points: Points) -> tuple[Points, Points, Points]:
        """Image coordinates u (right) and v (down), in [0, 1] across the canvas, and depth."""
        points = _float64(points)
        depth = points[:, 1] + self.distance
        safe = depth.clip(1e-6)
        return 0.5 + self.focal * points[:, 0] / safe, 0.5 - self.focal * points[:, 2] / safe, depth


@dataclass(frozen=True)
class OrthographicCamera:
    """A camera looking toward +Y from far away: the canvas shows x (right) and z (up) scaled
    by ``scale`` (canvas widths per scene unit), the scene's origin at (u0, v0). For a model
    that takes no camera (TripoSG, TRELLIS): the photo stage fits one to the shape's
    silhouette. ``azimuth`` turns the camera about +Z (degrees, counter-clockwise seen from
    above: at 90 it looks toward -X from +X) for a shape that may face any way (TRELLIS)."""

    scale: float
    u0: float = 0.5
    v0: float = 0.5
    distance: float = 10.0  # far enough in front of any shape, so every depth is positive
    azimuth: float = 0.0

    def towards(self, points: Points) -> Points:
        turn = math.radians(self.azimuth)
        return _rows((math.sin(turn), -math.cos(turn), 0.0), points)

    def pixel_size(self, depth: Points) -> Points:
        return _float64(depth) * 0.0 + 1.0 / self.scale

    def project(self, points: Points) -> tuple[Points, Points, Points]:
        """At azimuth 0 exactly the unturned view: x across, y ahead."""
        points = _float64(points)
        across, ahead = view_axes(points, self.azimuth)
        return self.u0 + self.scale * across, self.v0 - self.scale * points[:, 2], ahead + self.distance


Camera = SourceCamera | OrthographicCamera
