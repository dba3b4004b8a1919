"""The image as the published TripoSR script prepares it (``run.py`` and the model's own
preprocessor): cut out, recentred at 85% on a transparent square, composited on grey,
8-bit, resized bilinearly with antialiasing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ImageError
from ...input.prepare import CutOut, MaskFunction

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
        padding = (
            (extra_rows // 2, extra_rows - extra_rows // 2),
            (extra_columns // 2, extra_columns - extra_columns // 2),
            (0, 0),
        )
        return np.pad(image, padding)

    square = pad_to(object_box, max(object_box.shape[:2]))
    return pad_to(square, int(square.shape[0] / ratio))


def cut_out(rgba: np.ndarray, remove_background: MaskFunction | None = None) -> CutOut:
    """The object's mask, 8-bit as the published script has it: the image's own alpha when
    some pixel is not fully opaque, else the background remover's."""
    rgba = np.round(rgba * 255.0) / 255.0  # the published script works on the 8-bit image
    masked = has_alpha(rgba)
    if not masked and remove_background is not None:
        rgba = rgba.astype(np.float32)
        rgba[..., 3] = np.round(np.clip(remove_background(rgba[..., :3]), 0.0, 1.0) * 255.0) / 255.0
        masked = True
    if not (rgba[..., 3] > 0).any():
        raise ImageError("no pixel of the image is opaque: there is no object to reconstruct")
    return CutOut(rgba.astype(np.float32), masked)


def photo_canvas(cut: CutOut, recenter_object: bool = True, foreground_ratio: float = FOREGROUND_RATIO) -> np.ndarray:
    """(S, S, 4) float: the canvas the model input is resized from, at the image's own
    resolution, colours as photographed and the mask as alpha."""
    rgba8 = np.round(cut.rgba * 255.0).astype(np.uint8)
    if recenter_object:
        rgba8 = resize_foreground(rgba8, foreground_ratio)
    return rgba8.astype(np.float32) / 255.0


def model_input(
    cut: CutOut, size: int, recenter_object: bool = True, foreground_ratio: float = FOREGROUND_RATIO
) -> torch.Tensor:
    """The model's input (1, 3, S, S) in [0, 1]: on grey, 8-bit, resized bilinearly with antialiasing."""
    image = photo_canvas(cut, recenter_object, foreground_ratio)
    alpha = image[..., 3:4]
    grey = image[..., :3] * alpha + (1.0 - alpha) * GREY
    eight_bit = (grey * 255.0).astype(np.uint8)  # truncated, as the published script hands on a PIL image
    tensor = torch.from_numpy(eight_bit.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def prepare_image(
    rgba: np.ndarray,
    size: int,
    remove_background: MaskFunction | None = None,
    recenter_object: bool = True,
    foreground_ratio: float = FOREGROUND_RATIO,
) -> torch.Tensor:
    """Float RGBA (``input.read``) -> the model's input (1, 3, S, S) in [0, 1]."""
    return model_input(cut_out(rgba, remove_background), size, recenter_object, foreground_ratio)
