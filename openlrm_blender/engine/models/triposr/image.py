"""The image as the published TripoSR script prepares it (``run.py`` and the model's own
preprocessor): cut out, recentred at 85% on a transparent square, composited on grey,
8-bit, resized bilinearly with antialiasing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ImageError
from ...input.prepare import MaskFunction

FOREGROUND_RATIO = 0.85
GREY = 0.5


def has_alpha(rgba: np.ndarray) -> bool:
    """The published test: an alpha channel is used when some pixel is not fully opaque."""
    return bool((rgba[..., 3] < 1.0).any())


def resize_foreground(rgba8: np.ndarray, ratio: float) -> np.ndarray:
    """The object's box (alpha > 0; as published, its last row and column are cut) padded
    to a square, then to ``side / ratio``, transparent, centred (the odd pixel at the end)."""
    rows, columns = np.nonzero(rgba8[..., 3] > 0)
    if len(rows) == 0:
        raise ImageError("no pixel of the image is opaque: there is no object to reconstruct")
    object_box = rgba8[rows.min() : rows.max(), columns.min() : columns.max()]

    def pad_to(image: np.ndarray, side: int) -> np.ndarray:
        extra_rows, extra_columns = side - image.shape[0], side - image.shape[1]
        padding = ((extra_rows // 2, extra_rows - extra_rows // 2), (extra_columns // 2, extra_columns - extra_columns // 2), (0, 0))
        return np.pad(image, padding)

    square = pad_to(object_box, max(object_box.shape[:2]))
    return pad_to(square, int(square.shape[0] / ratio))


def prepare_image(
    rgba: np.ndarray,
    size: int,
    remove_background: MaskFunction | None = None,
    recenter_object: bool = True,
    foreground_ratio: float = FOREGROUND_RATIO,
) -> torch.Tensor:
    """Float RGBA (``input.read``) -> the model's input (1, 3, S, S) in [0, 1]."""
    rgba8 = np.round(rgba * 255.0).astype(np.uint8)  # the published script works on the 8-bit image
    if not has_alpha(rgba) and remove_background is not None:
        rgba8[..., 3] = np.round(np.clip(remove_background(rgba[..., :3]), 0.0, 1.0) * 255.0).astype(np.uint8)
    if recenter_object:
        rgba8 = resize_foreground(rgba8, foreground_ratio)
    image = rgba8.astype(np.float32) / 255.0
    alpha = image[..., 3:4]
    grey = image[..., :3] * alpha + (1.0 - alpha) * GREY
    eight_bit = (grey * 255.0).astype(np.uint8)  # truncated, as the published script hands on a PIL image
    tensor = torch.from_numpy(eight_bit.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
