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

On the run's device: the photo, its depth test and the points are tensors there. Points and
normals come as NumPy arrays (the colouring's) or tensors (the fill's); what is given is
given back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..camera import Camera, view_axes
from ..geometry.coverage import covered
from ..geometry.tensors import compute_device, given_as, one_thread, tensor

FULL_WEIGHT_DEGREES = 65.0
ZERO_WEIGHT_DEGREES = 82.0
BACK_DEGREES = 110.0
MASK_FEATHER = 0.012  # of the canvas's side
DEPTH_SIZE = 1024  # the depth test's pixels per side, at most
DEPTH_TOLERANCE_PIXELS = 2.0  # a point is visible within this many pixels' depth of the nearest surface
# A point is judged against the farthest depth within this many pixels of its own. A viewer's
# bilinear filter reads the texels round each point it shows, those just behind a step's edge
# too, and a texel of a 1024 px texture spans about two of the depth test's pixels: hidden by
# less than that, a texel takes the photo as the surface beside it does, or the model's colours
# would show in a line along every step (and at every depth jump) of the photo's view.
VISIBLE_REACH_PIXELS = 2

Values = np.ndarray | torch.Tensor


def _smoothstep(low: float, high: float, value: torch.Tensor) -> torch.Tensor:
    t = ((value - low) / (high - low)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _bilinear(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N, C) samples of (C, H, W) at image coordinates in [0, 1] (pixel centres at (i + 0.5) / side); 0 outside."""
    grid = torch.stack([u * 2.0 - 1.0, v * 2.0 - 1.0], dim=1).to(image.dtype)[None, None]
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, :, 0].T


def feathered_mask(alpha: Values, feather: int) -> Values:
    """The mask (alpha above one half) eroded step by step: 1 at ``feather`` pixels inside its
    edge and beyond, rising from 0 at the edge: the photo's weight across the object."""
    inside = tensor(alpha) > 0.5
    depth = inside.float()
    current = inside
    for _ in range(max(feather - 1, 0)):
        padded = F.pad(current[None].float(), (1, 1, 1, 1))[0] > 0
        current = current & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        depth += current
    return given_as(alpha, (depth / max(feather, 1)).clamp(0.0, 1.0))


def depth_buffer(x: torch.Tensor, y: torch.Tensor, depth: torch.Tensor, faces: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size): the nearest depth of the mesh at each pixel's centre (inf where none).
    Only centres count: a triangle's depth beside a centre is not the surface's there, and at
    a depth jump it would hide the farther side's points round it."""
    nearest = torch.full((size * size,), math.inf, dtype=torch.float64, device=depth.device)
    for triangle, pixel, weights in covered(x, y, faces, size):
        at = (weights * depth[faces[triangle]]).sum(dim=1)
        nearest.scatter_reduce_(0, pixel, at, "amin")
    return nearest.view(size, size)


def _view_frame(points: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point across the camera's view and ahead along it (a source camera's is not turned)."""
    return view_axes(points, getattr(camera, "azimuth", 0.0))


def _mirrored(points: torch.Tensor, camera: Camera, middle: float) -> torch.Tensor:
    """Points (or normals, ``middle`` 0) mirrored across the plane square to the view at
    ``middle`` ahead: y to 2 middle - y for a camera not turned."""
    turn = math.radians(getattr(camera, "azimuth", 0.0))
    across, ahead = _view_frame(points, camera)
    ahead = -ahead + 2 * middle
    x, y = across * math.cos(turn) - ahead * math.sin(turn), across * math.sin(turn) + ahead * math.cos(turn)
    return torch.stack([x, y, points[:, 2]], dim=1)


class Visibility:
    """Which points the camera sees: each point's depth against the mesh's nearest at its pixel."""

    @one_thread
    def __init__(
        self,
        vertices: Values,
        faces: Values,
        camera: Camera,
        size: int = DEPTH_SIZE,
        device: torch.device | None = None,
    ) -> None:
        self.device = compute_device(device, vertices)
        vertices, faces = tensor(vertices, self.device), tensor(faces, self.device).long()
        u, v, depth = camera.project(vertices)
        self.size, self.camera = size, camera
        # The plane across the shape's middle, square to the view: a mirror image's (Photo.seen).
        ahead = _view_frame(vertices, camera)[1]
        self.middle = float(ahead.min() + ahead.max()) / 2
        nearest = depth_buffer(u * size - 0.5, v * size - 0.5, depth, faces, size)
        # A pixel a depth jump crosses holds the nearer side's depth, which would hide a point
        # just beyond the jump: a point is judged against the farthest depth round its pixel.
        reach = VISIBLE_REACH_PIXELS
        padded = F.pad(nearest[None, None], (reach,) * 4, value=math.inf)
        self.nearest = F.max_pool2d(padded, 2 * reach + 1, stride=1)[0, 0]

    @one_thread
    def visible(self, points: Values) -> Values:
        u, v, depth = self.camera.project(tensor(points, self.device))
        columns = (u * self.size - 0.5).round().long().clamp(0, self.size - 1)
        rows = (v * self.size - 0.5).round().long().clamp(0, self.size - 1)
        pixel = self.camera.pixel_size(depth) / self.size  # one pixel's width at that depth
        return given_as(points, depth <= self.nearest[rows, columns] + DEPTH_TOLERANCE_PIXELS * pixel)


class Photo:
    """The prepared photo (RGBA canvas, alpha the object's mask) seen by ``camera``, on ``device``."""

    @one_thread
    def __init__(self, canvas: np.ndarray, camera: Camera, device: torch.device | None = None) -> None:
        self.camera, self.device = camera, compute_device(device, canvas)
        canvas = tensor(canvas, self.device).float()
        alpha = canvas[..., 3:]
        # Colours weighted by the mask, and the mask: sampling both and dividing keeps every
        # background pixel out of an object pixel's colour, at the mask's edge too. With the
        # photo's weight across the object, (5, H, W): sampled in one go.
        feather = max(1, round(MASK_FEATHER * max(canvas.shape[:2])))
        weight = feathered_mask(canvas[..., 3], feather)[..., None]
        self.layers = torch.cat([canvas[..., :3] * alpha, alpha, weight], dim=2).permute(2, 0, 1).contiguous()

    def weights_and_colours(
        self, points: Values, normals: Values, visibility: Visibility
    ) -> tuple[Values, Values, Values]:
        """Each point's photo weight, the photo's colour there, and how much the tone
        correction applies (1 facing the camera, 0 from ``BACK_DEGREES`` on). ``normals``
        (N, 3), or (N, K, 3) where a point faces the camera as well as the best of its K."""
        return self.seen(points, normals, visibility)

    def _weights_and_colours(
        self, points: torch.Tensor, normals: torch.Tensor, visibility: Visibility
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u, v, _ = self.camera.project(points)
        normals = normals.reshape(len(points), -1, 3).double()
        cosine = (normals * self.camera.towards(points)[:, None]).sum(dim=2).max(dim=1).values
        facing = _smoothstep(
            math.cos(math.radians(ZERO_WEIGHT_DEGREES)), math.cos(math.radians(FULL_WEIGHT_DEGREES)), cosine
        )
        correction = _smoothstep(
            math.cos(math.radians(BACK_DEGREES)), math.cos(math.radians(ZERO_WEIGHT_DEGREES)), cosine
        )
        sampled = _bilinear(self.layers, u, v).double()
        weight = facing * sampled[:, 4] * visibility.visible(points)
        colours = sampled[:, :3] / sampled[:, 3:4].clamp(min=1e-6)
        return weight, colours, correction

    @one_thread
    def seen(
        self, points: Values, normals: Values, visibility: Visibility, mirror: bool = False
    ) -> tuple[Values, Values, Values]:
        """``weights_and_colours``, and with ``mirror`` (for symmetric objects): where the photo
        does not show a point it may show its mirror image across the shape's middle, square to
        the view, so the back takes the front's colours."""
        at, facing = tensor(points, self.device).double(), tensor(normals, self.device).double()
        weight, colours, correction = self._weights_and_colours(at, facing, visibility)
        if mirror:
            mirrored = _mirrored(at, self.camera, visibility.middle)
            flipped = _mirrored(facing.reshape(-1, 3), self.camera, 0.0).view(facing.shape)
            mirror_weight, mirror_colours, _ = self._weights_and_colours(mirrored, flipped, visibility)
            added = (1 - weight) * mirror_weight
            total = weight + added
            colours = (weight[:, None] * colours + added[:, None] * mirror_colours) / total.clamp(min=1e-12)[:, None]
            weight = total
        return tuple(given_as(points, value) for value in (weight, colours, correction))

    def mean_colour(self) -> torch.Tensor:
        """The object's mean colour in the photo (its mask's)."""
        weighted = self.layers[:4].double()
        return weighted[:3].sum(dim=(1, 2)) / max(float(weighted[3].sum()), 1e-12)

    @one_thread
    def blend(
        self, points: Values, normals: Values, field: Values, visibility: Visibility, mirror: bool = False
    ) -> Values:
        """The model's colours at ``points`` (``field``) with the photo on the part it shows."""
        weight, photo, correction = self.seen(tensor(points, self.device), normals, visibility, mirror)
        base = tensor(field, self.device)
        trusted = weight > 0.99
        shift = median(photo[trusted] - base[trusted]) if int(trusted.sum()) >= 16 else photo.new_zeros(3)
        corrected = base + correction[:, None] * shift
        blended = corrected + weight[:, None] * (photo - corrected)
        return given_as(points, blended.clamp(0.0, 1.0).float())


def median(values: torch.Tensor) -> torch.Tensor:
    """The median of each column, the mean of the middle two for an even count (NumPy's;
    PyTorch's is the lower one)."""
    ordered = values.sort(dim=0).values
    return (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
