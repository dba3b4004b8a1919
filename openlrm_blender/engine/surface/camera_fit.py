"""A camera for a model that takes none (TripoSG: its input is the object cropped with a margin;
TRELLIS: the same, and its shape may face any way).

The shape is seen orthographically along the front axis (+Y), and the view is fitted so that
its silhouette covers the photo's mask: first from the two bounding boxes, then refined by
the overlap (intersection over union) of silhouette and mask. The silhouette is drawn once,
in the shape's own plane square to the view; each candidate view only maps the canvas's
pixels into it, a batch of candidates at a time on the run's device. Asked to (``turned``),
the view is also turned about +Z: every ``TURN_STEP_DEGREES`` coarsely, then the best turn
refined by halving steps.
"""

from __future__ import annotations

import numpy as np
import torch

from ..camera import OrthographicCamera, view_axes
from ..geometry.coverage import covered
from ..geometry.tensors import compute_device, one_thread, tensor

FIT_PIXELS = 256  # the canvas's side while fitting
SILHOUETTE_PIXELS = 512  # the silhouette's side in the shape's plane
# Coordinate search: steps of the scale's logarithm and of the offsets (canvas fractions).
SEARCH_STEPS = (0.08, 0.04, 0.02, 0.01, 0.005, 0.0025)
# The turn's search: every step's view briefly searched (a smaller silhouette, the first search
# steps), then the best turn's neighbours either side by halving steps, each searched in full.
TURN_STEP_DEGREES = 15.0
LAST_TURN_STEP_DEGREES = 0.9375
COARSE_SILHOUETTE_PIXELS = 128
COARSE_SEARCH_STEPS = SEARCH_STEPS[:3]


def downsampled_mask(alpha: torch.Tensor, side: int = FIT_PIXELS) -> torch.Tensor:
    """The mask (alpha over one half) on a side x side grid of the canvas, by area."""
    height, width = alpha.shape
    centres = torch.arange(side, dtype=torch.float64, device=alpha.device) + 0.5
    rows, columns = (centres * height / side).long(), (centres * width / side).long()
    return alpha[rows][:, columns] > 0.5


class Silhouette:
    """The shape's outline seen along +Y (turned by ``azimuth`` degrees about +Z): which
    points of its plane square to the view it covers."""

    def __init__(
        self, vertices: torch.Tensor, faces: torch.Tensor, side: int = SILHOUETTE_PIXELS, azimuth: float = 0.0
    ) -> None:
        # The plane's coordinates: across the view (x unturned) and up.
        self.plane = torch.stack([view_axes(vertices, azimuth)[0], vertices[:, 2]], 1)
        self.azimuth, self.side = azimuth, side
        self.bounds = self.plane.min(dim=0).values, self.plane.max(dim=0).values  # the shape's, in its plane
        self.extent = float((self.bounds[1] - self.bounds[0]).max()) * (1 + 2 / side)
        self.low = self.bounds[0] - self.extent / side  # the image's corner
        x = (self.plane[:, 0] - self.low[0]) / self.extent * side - 0.5
        y = (self.plane[:, 1] - self.low[1]) / self.extent * side - 0.5
        image = torch.zeros(side * side, dtype=torch.bool, device=vertices.device)
        for _, pixel, _ in covered(x, y, faces, side):
            image[pixel] = True
        self.image = image.view(side, side)  # [up row, across column], up upward

    def seen_by(self, cameras: list[OrthographicCamera], side: int) -> torch.Tensor:
        """(K, side, side): the silhouette on the canvas of each camera (canvas row 0 at the top)."""
        device = self.image.device
        centres = (torch.arange(side, dtype=torch.float64, device=device) + 0.5) / side
        scale, u0, v0 = torch.tensor(
            [[camera.scale, camera.u0, camera.v0] for camera in cameras], dtype=torch.float64, device=device
        ).T[:, :, None]
        x, z = (centres - u0) / scale, (v0 - centres) / scale
        columns = ((x - self.low[0]) / self.extent * self.side).floor().long()
        rows = ((z - self.low[1]) / self.extent * self.side).floor().long()
        inside_x, inside_z = (columns >= 0) & (columns < self.side), (rows >= 0) & (rows < self.side)
        last = self.side - 1
        seen = self.image[rows.clamp(0, last)[:, :, None], columns.clamp(0, last)[:, None, :]]
        return seen & inside_z[:, :, None] & inside_x[:, None, :]


def overlaps(silhouettes: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Each (side, side) silhouette's intersection over union with ``mask``."""
    union = (silhouettes | mask).sum(dim=(1, 2)).double()
    return torch.where(union > 0, (silhouettes & mask).sum(dim=(1, 2)) / union.clamp(min=1), 0.0).tolist()


def _changes(step: float) -> list[tuple[float, float, float]]:
    """A step of the scale's logarithm, then of u0, then of v0, each either way."""
    return [(step, 0, 0), (-step, 0, 0), (0, step, 0), (0, -step, 0), (0, 0, step), (0, 0, -step)]


def _fit(silhouette: Silhouette, mask: torch.Tensor, steps: tuple[float, ...]) -> tuple[OrthographicCamera, float]:
    """The silhouette's best view of the mask by coordinate search. Each pass tries every
    change in turn from the best view so far, as one after another would, but a batch at a
    time: the changes left are looked at together and the first that improves is taken."""
    rows, columns = (index.cpu().numpy() for index in torch.nonzero(mask, as_tuple=True))
    # Bounding boxes: the mask's (canvas fractions) against the shape's (scene units).
    u_low, u_high = columns.min() / FIT_PIXELS, (columns.max() + 1) / FIT_PIXELS
    v_low, v_high = rows.min() / FIT_PIXELS, (rows.max() + 1) / FIT_PIXELS
    (x_low, z_low), (x_high, z_high) = (bound.cpu().numpy() for bound in silhouette.bounds)
    scale = float(np.sqrt((u_high - u_low) / max(x_high - x_low, 1e-9) * (v_high - v_low) / max(z_high - z_low, 1e-9)))
    u0 = (u_low + u_high) / 2 - scale * (x_low + x_high) / 2
    v0 = (v_low + v_high) / 2 + scale * (z_low + z_high) / 2
    azimuth = silhouette.azimuth
    best = OrthographicCamera(scale, u0, v0, azimuth=azimuth)
    score = overlaps(silhouette.seen_by([best], FIT_PIXELS), mask)[0]
    for step in steps:
        improved = True
        while improved:
            improved, changes = False, _changes(step)
            while changes:
                # The scale changes about the silhouette's centre on the canvas, so it stays put.
                centre_u = best.u0 + best.scale * (x_low + x_high) / 2
                centre_v = best.v0 - best.scale * (z_low + z_high) / 2
                scales = [best.scale * float(np.exp(change[0])) for change in changes]
                candidates = [
                    OrthographicCamera(
                        scale,
                        centre_u - scale * (x_low + x_high) / 2 + change[1],
                        centre_v + scale * (z_low + z_high) / 2 + change[2],
                        azimuth=azimuth,
                    )
                    for scale, change in zip(scales, changes, strict=True)
                ]
                found = overlaps(silhouette.seen_by(candidates, FIT_PIXELS), mask)
                better = next((k for k, value in enumerate(found) if value > score + 1e-6), None)
                if better is None:
                    break
                best, score, improved = candidates[better], found[better], True
                changes = changes[better + 1 :]
    return best, score


@one_thread
def fit_camera(
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    alpha: np.ndarray | torch.Tensor,
    turned: bool = False,
    device: torch.device | None = None,
) -> tuple[OrthographicCamera, float]:
    """The orthographic front view of the shape (in our frame) whose silhouette best covers
    the canvas's mask (``alpha``), and how well: the overlap, 1 for a perfect match. With
    ``turned``, the best among views turned about +Z (the camera's ``azimuth``)."""
    device = compute_device(device, vertices)
    vertices, faces = tensor(vertices, device), tensor(faces, device).long()
    mask = downsampled_mask(tensor(alpha, device))
    if not bool(mask.any()):
        return OrthographicCamera(1.0), 0.0
    if not turned:
        return _fit(Silhouette(vertices, faces), mask, SEARCH_STEPS)
    coarse = [
        _fit(Silhouette(vertices, faces, COARSE_SILHOUETTE_PIXELS, azimuth), mask, COARSE_SEARCH_STEPS)
        for azimuth in np.arange(0.0, 360.0, TURN_STEP_DEGREES).tolist()
    ]
    best = _fit(
        Silhouette(vertices, faces, azimuth=max(coarse, key=lambda fitted: fitted[1])[0].azimuth), mask, SEARCH_STEPS
    )
    step = TURN_STEP_DEGREES / 2
    while step >= LAST_TURN_STEP_DEGREES:
        centre = best[0].azimuth
        for azimuth in (centre - step, centre + step):
            fitted = _fit(Silhouette(vertices, faces, azimuth=azimuth % 360.0), mask, SEARCH_STEPS)
            best = fitted if fitted[1] > best[1] else best
        step /= 2
    return best
