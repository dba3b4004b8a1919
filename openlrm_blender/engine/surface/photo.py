"""The photo on the front: the model's colours come from 64 x 64 planes, blurry at any
texture size, yet the input photo is in hand at full resolution and the camera the model
assumes for it is known. Every surface point the photo shows takes the photo's colour.

A point is projected through the source camera into the photo as the run prepared it (the
full-resolution canvas after recentring, ``input.prepare.photo_canvas``). It takes the
photo where it is visible from the camera (a depth test against the mesh's nearest depth
at its pixel, a depth buffer of our own)
and faces it: at full weight within ``FULL_WEIGHT_DEGREES`` of the view direction, fading
to none at ``ZERO_WEIGHT_DEGREES``, and fading in from the mask's edge over
``MASK_FEATHER`` of the canvas, so no background pixel reaches the object. Where the
photo's tones differ from the model's, the model's colours are shifted by the difference
(measured where the photo has full weight), a correction that fades out round the side
(to none at ``BACK_DEGREES``): the photo fades into the field without a seam, and the side
facing away keeps the model's own colours.

Points and normals are in our output frame: the camera sits at (0, -distance, 0) looking
toward +Y with +Z up, its focal length given as a share of the canvas's side.
"""

from __future__ import annotations

import math

import numpy as np

from ..camera import Camera
from ..geometry.raster import touches

FULL_WEIGHT_DEGREES = 65.0
ZERO_WEIGHT_DEGREES = 82.0
BACK_DEGREES = 110.0
MASK_FEATHER = 0.012  # of the canvas's side
DEPTH_SIZE = 1024  # the depth test's pixels per side, at most
DEPTH_TOLERANCE_PIXELS = 2.0  # a point is visible within this many pixels' depth of the nearest surface


def _smoothstep(low: float, high: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Samples of (H, W, C) at image coordinates in [0, 1] (pixel centres at (i + 0.5) / side); 0 outside."""
    height, width = image.shape[:2]
    x, y = u * width - 0.5, v * height - 0.5
    inside = (x > -1) & (x < width) & (y > -1) & (y < height)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))  # zeros round the edge

    def at(dy: int, dx: int) -> np.ndarray:
        rows, columns = np.clip(y0 + dy + 1, 0, height + 1), np.clip(x0 + dx + 1, 0, width + 1)
        return padded[rows, columns]

    value = (at(0, 0) * (1 - fx) + at(0, 1) * fx) * (1 - fy) + (at(1, 0) * (1 - fx) + at(1, 1) * fx) * fy
    return np.where(inside[:, None], value, 0.0)


def feathered_mask(alpha: np.ndarray, feather: int) -> np.ndarray:
    """The mask (alpha above one half) eroded step by step: 1 at ``feather`` pixels inside its
    edge and beyond, rising from 0 at the edge: the photo's weight across the object."""
    inside = alpha > 0.5
    depth = inside.astype(np.float32)
    current = inside
    for _ in range(max(feather - 1, 0)):
        padded = np.pad(current, 1)
        current = current & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        depth += current
    return np.clip(depth / max(feather, 1), 0.0, 1.0)


def depth_buffer(x: np.ndarray, y: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: int) -> np.ndarray:
    """(size, size): the nearest depth of the mesh at each pixel's centre (inf where none).
    Only centres count: a triangle's depth beside a centre is not the surface's there, and at
    a depth jump it would hide the farther side's points round it."""
    nearest = np.full(size * size, np.inf)
    for touched in touches(x, y, faces, size, 0.0):
        np.minimum.at(nearest, touched.pixel, np.einsum("nk,nk->n", touched.weights, depth[faces[touched.triangle]]))
    return nearest.reshape(size, size)


class Visibility:
    """Which points the camera sees: each point's depth against the mesh's nearest at its pixel."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera, size: int = DEPTH_SIZE) -> None:
        u, v, depth = camera.project(vertices)
        self.size, self.camera = size, camera
        # The plane across the shape's middle, square to the view: a mirror image's (Photo.seen).
        self.middle = float(vertices[:, 1].min() + vertices[:, 1].max()) / 2
        nearest = depth_buffer(u * size - 0.5, v * size - 0.5, depth, faces, size)
        # A pixel a depth jump crosses holds the nearer side's depth, which would hide a point
        # just beyond the jump: a point is judged against the farthest of its pixel's neighbours.
        padded = np.pad(nearest, 1, constant_values=np.inf)
        self.nearest = np.max(
            [padded[1 + dy : 1 + dy + size, 1 + dx : 1 + dx + size] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0
        )

    def visible(self, points: np.ndarray) -> np.ndarray:
        u, v, depth = self.camera.project(points)
        columns = np.clip(np.rint(u * self.size - 0.5).astype(np.int64), 0, self.size - 1)
        rows = np.clip(np.rint(v * self.size - 0.5).astype(np.int64), 0, self.size - 1)
        pixel = self.camera.pixel_size(depth) / self.size  # one pixel's width at that depth
        return depth <= self.nearest[rows, columns] + DEPTH_TOLERANCE_PIXELS * pixel


class Photo:
    """The prepared photo (RGBA canvas, alpha the object's mask) seen by ``camera``."""

    def __init__(self, canvas: np.ndarray, camera: Camera) -> None:
        self.camera = camera
        alpha = canvas[..., 3:].astype(np.float32)
        # Colours weighted by the mask, and the mask: sampling both and dividing keeps every
        # background pixel out of an object pixel's colour, at the mask's edge too.
        self.weighted = np.concatenate([canvas[..., :3] * alpha, alpha], axis=2)
        feather = max(1, round(MASK_FEATHER * max(canvas.shape[:2])))
        self.weight = feathered_mask(canvas[..., 3], feather)[..., None]

    def weights_and_colours(
        self, points: np.ndarray, normals: np.ndarray, visibility: Visibility
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each point's photo weight, the photo's colour there, and how much the tone
        correction applies (1 facing the camera, 0 from ``BACK_DEGREES`` on). ``normals``
        (N, 3), or (N, K, 3) where a point faces the camera as well as the best of its K."""
        u, v, _ = self.camera.project(points)
        normals = normals.reshape(len(points), -1, 3).astype(np.float64)
        cosine = np.einsum("nkd,nd->nk", normals, self.camera.towards(points)).max(axis=1)
        facing = _smoothstep(
            math.cos(math.radians(ZERO_WEIGHT_DEGREES)), math.cos(math.radians(FULL_WEIGHT_DEGREES)), cosine
        )
        correction = _smoothstep(
            math.cos(math.radians(BACK_DEGREES)), math.cos(math.radians(ZERO_WEIGHT_DEGREES)), cosine
        )
        mask = bilinear(self.weight, u, v)[:, 0]
        weight = facing * mask * visibility.visible(points)
        weighted = bilinear(self.weighted, u, v)
        colours = weighted[:, :3] / np.maximum(weighted[:, 3:], 1e-6)
        return weight, colours, correction

    def seen(
        self, points: np.ndarray, normals: np.ndarray, visibility: Visibility, mirror: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``weights_and_colours``, and with ``mirror`` (for symmetric objects): where the photo
        does not show a point it may show its mirror image across the shape's middle, square to
        the view, so the back takes the front's colours."""
        weight, colours, correction = self.weights_and_colours(points, normals, visibility)
        if not mirror:
            return weight, colours, correction
        flip = np.array([1.0, -1.0, 1.0])
        mirrored = points * flip + np.array([0.0, 2 * visibility.middle, 0.0])
        mirror_weight, mirror_colours, _ = self.weights_and_colours(mirrored, normals * flip, visibility)
        added = (1 - weight) * mirror_weight
        total = weight + added
        colours = (weight[:, None] * colours + added[:, None] * mirror_colours) / np.maximum(total, 1e-12)[:, None]
        return total, colours, correction

    def mean_colour(self) -> np.ndarray:
        """The object's mean colour in the photo (its mask's)."""
        return self.weighted[..., :3].sum(axis=(0, 1)) / max(float(self.weighted[..., 3].sum()), 1e-12)

    def blend(
        self, points: np.ndarray, normals: np.ndarray, field: np.ndarray, visibility: Visibility, mirror: bool = False
    ) -> np.ndarray:
        """The model's colours at ``points`` (``field``) with the photo on the part it shows."""
        weight, photo, correction = self.seen(points, normals, visibility, mirror)
        trusted = weight > 0.99
        shift = np.median(photo[trusted] - field[trusted], axis=0) if trusted.sum() >= 16 else np.zeros(3)
        corrected = field + correction[:, None] * shift
        blended = corrected + weight[:, None] * (photo - corrected)
        return np.clip(blended, 0.0, 1.0).astype(np.float32)
