"""From an image to the (1, 3, S, S) tensor OpenLRM reads, and to the same canvas at full
resolution for the photo texture.

Steps: take the alpha channel as the object's mask when it holds one, else ask the
background remover for one (``cut_out``); crop and rescale the object to the foreground
ratio of a square canvas; composite on white; resize to S x S the published way
(bicubic, align_corners true, clamped) (``model_input``). ``photo_canvas`` lays the
cut-out on the same canvas, unresized and with its mask, for the photo texture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageError

MaskFunction = Callable[[np.ndarray], np.ndarray]  # RGB float (H, W, 3) -> alpha (H, W)

# An alpha channel counts as a mask when some pixel is clearly see-through ...
MASK_MIN_ALPHA = 0.99
# ... and a pixel belongs to the object when it is at least half opaque, so the faint
# halo a soft mask leaves around the object does not widen the object's box.
OBJECT_ALPHA = 0.5
VISIBLE_ALPHA = 0.5 / 255


def has_mask(rgba: np.ndarray) -> bool:
    return bool((rgba[..., 3] < MASK_MIN_ALPHA).any())


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    tensor = F.interpolate(tensor, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return tensor[0].permute(1, 2, 0).numpy()


def recenter(rgb: np.ndarray, mask: np.ndarray, foreground_ratio: float, background: float = 1.0) -> np.ndarray:
    """Crop the object's box and scale it so its longer side is ``foreground_ratio`` of a
    square canvas (white by default) as large as the image's longer side, centred."""
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = max(rgb.shape[:2])
    scale = size * foreground_ratio / max(bottom - top, right - left)
    height = max(1, round((bottom - top) * scale))
    width = max(1, round((right - left) * scale))
    canvas = np.full((size, size, rgb.shape[2]), background, dtype=np.float32)
    y, x = (size - height) // 2, (size - width) // 2
    canvas[y : y + height, x : x + width] = _resize(rgb[top:bottom, left:right], height, width)
    return canvas


def pad_to_square(rgb: np.ndarray, background: float = 1.0) -> np.ndarray:
    """Centre on a square (white by default) so a non-square image is not squashed by the resize."""
    height, width = rgb.shape[:2]
    size = max(height, width)
    if height == width:
        return rgb
    canvas = np.full((size, size, rgb.shape[2]), background, dtype=np.float32)
    y, x = (size - height) // 2, (size - width) // 2
    canvas[y : y + height, x : x + width] = rgb
    return canvas


def to_model_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) float -> (1, 3, size, size): bicubic, align_corners true, clamped (published)."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    tensor = F.interpolate(tensor, size=(size, size), mode="bicubic", align_corners=True)
    return tensor.clamp(0.0, 1.0)


@dataclass(frozen=True)
class CutOut:
    """The image with the object's mask in its alpha; ``masked`` False: no mask could be had
    (no transparency, no background removal), so the whole image is the object."""

    rgba: np.ndarray
    masked: bool


def cut_out(rgba: np.ndarray, remove_background: MaskFunction | None = None) -> CutOut:
    """The object's mask: the image's own alpha when it holds one, else the background
    remover's (if one is given)."""
    if not (rgba[..., 3] > VISIBLE_ALPHA).any():
        raise ImageError("the image is fully transparent: there is no object to reconstruct")
    masked = has_mask(rgba)
    removed = not masked and remove_background is not None
    if removed:
        rgba = rgba.copy()
        rgba[..., 3] = remove_background(rgba[..., :3])
        masked = True
    if not (rgba[..., 3] > OBJECT_ALPHA).any():
        what = "background removal found no object" if removed else "no pixel is more than half opaque"
        raise ImageError(f"{what} in the image")
    return CutOut(rgba, masked)


def _on_canvas(image: np.ndarray, cut: CutOut, recenter_object: bool, foreground_ratio: float, background: float):
    if not 0.0 < foreground_ratio <= 1.0:
        raise ImageError(f"foreground ratio must be in (0, 1], got {foreground_ratio}")
    if recenter_object and cut.masked:
        return recenter(image, cut.rgba[..., 3] > OBJECT_ALPHA, foreground_ratio, background)
    return pad_to_square(image, background)


def model_input(cut: CutOut, size: int, recenter_object: bool = True, foreground_ratio: float = 0.8) -> torch.Tensor:
    """The model's input tensor: the cut-out on white, recentred, resized."""
    return to_model_input(_on_canvas(composite_on_white(cut.rgba), cut, recenter_object, foreground_ratio, 1.0), size)


def photo_canvas(cut: CutOut, recenter_object: bool = True, foreground_ratio: float = 0.8) -> np.ndarray:
    """(S, S, 4) float: the model input's canvas at the image's own resolution, colours
    as photographed (not composited) and the mask as alpha (0 off the image)."""
    alpha = cut.rgba[..., 3:]
    laid = _on_canvas(
        np.concatenate([cut.rgba[..., :3] * alpha, alpha], axis=2), cut, recenter_object, foreground_ratio, 0.0
    )
    colour = laid[..., :3] / np.maximum(laid[..., 3:], 1e-6)
    return np.concatenate([np.clip(colour, 0.0, 1.0), laid[..., 3:]], axis=2).astype(np.float32)


def prepare_image(
    rgba: np.ndarray,
    size: int,
    remove_background: MaskFunction | None = None,
    recenter_object: bool = True,
    foreground_ratio: float = 0.8,
) -> torch.Tensor:
    """The model's input tensor from float RGBA (``read.read_rgba``: the image is decoded
    once per run, before any model work). ``remove_background`` is used only when the
    image has no mask."""
    return model_input(cut_out(rgba, remove_background), size, recenter_object, foreground_ratio)
