"""The image as TripoSG's published scripts prepare it: the object cut out by its alpha, cropped
to its box with a 10% white margin, made 8-bit (``scripts/image_process.py``); then the
feature extractor's bicubic resize to 256 on the short side, a 224 centre crop and ImageNet's
normalisation (transformers' BitImageProcessor).

Where the image has no usable alpha the published script runs BRIA's RMBG-1.4, whose weights
are non-commercial: ours stays rembg's models (``input.background``), their mask made
binary at one half as the published script thresholds RMBG's.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ...errors import ImageError
from ...input.prepare import CutOut, MaskFunction
from .config import PreprocessorConfig

MARGIN = 0.1  # of the object's longer side, on each side
LARGEST_SIDE = 2000  # larger images are first shrunk to this
# An alpha channel is the object's mask when at least this share of its values is clearly
# transparent (12 or less of 255) and as much clearly opaque (244 or more).
ALPHA_SHARE = 0.01


def has_usable_alpha(alpha8: np.ndarray) -> bool:
    """The published test: the first and last of 20 histogram bins each hold 1% of the pixels."""
    least = alpha8.size * ALPHA_SHARE
    return bool((alpha8 <= 12).sum() >= least and (alpha8 >= 244).sum() >= least)


def _shrunk(rgba8: np.ndarray) -> np.ndarray:
    """An image over ``LARGEST_SIDE`` pixels brought down to it (area averaging: the published
    script uses OpenCV's INTER_AREA, of which Pillow's box filter is the same average)."""
    height, width = rgba8.shape[:2]
    scale = LARGEST_SIDE / max(height, width)
    if scale >= 1:
        return rgba8
    size = (int(width * scale), int(height * scale))
    return np.asarray(Image.fromarray(rgba8, "RGBA").resize(size, Image.BOX))


def cut_out(rgba: np.ndarray, remove_background: MaskFunction | None = None) -> CutOut:
    """The image, 8-bit as the published script reads it, with the object's mask in its alpha:
    its own alpha where usable, else the background remover's made binary."""
    rgba8 = _shrunk(np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8))
    if not has_usable_alpha(rgba8[..., 3]):
        if remove_background is None:
            raise ImageError(
                "the image has no transparent background to cut the object out by: give one with transparency, or "
                "turn background removal on"
            )
        mask = remove_background(rgba8[..., :3].astype(np.float32) / 255.0) >= 0.5
        rgba8 = np.dstack([rgba8[..., :3], np.where(mask, 255, 0).astype(np.uint8)])
    if not (rgba8[..., 3] > 0).any():
        raise ImageError("no pixel of the image is opaque: there is no object to reconstruct")
    return CutOut(rgba8.astype(np.float32) / 255.0, True)


def _object_box(alpha8: np.ndarray) -> tuple[int, int, int, int]:
    """Top, left, height and width of every pixel with any opacity."""
    rows, columns = np.nonzero(alpha8 > 0)
    top, left = int(rows.min()), int(columns.min())
    return top, left, int(rows.max()) - top + 1, int(columns.max()) - left + 1


def _margins(height: int, width: int) -> tuple[int, int]:
    """Rows above (and below) and columns left (and right) of the box, as published: 10% of the
    longer side, the shorter side padded further towards a square."""
    if width > height:
        columns = int(width * MARGIN)
        return int(columns + (width - height) / 2), columns
    rows = int(height * MARGIN)
    return rows, int(rows + (height - width) / 2)


def _framed(image: np.ndarray, cut: CutOut, fill: float) -> np.ndarray:
    """``image`` (H, W, C) cropped to the object's box and padded by the published margins."""
    alpha8 = np.round(cut.rgba[..., 3] * 255.0).astype(np.uint8)
    top, left, height, width = _object_box(alpha8)
    rows, columns = _margins(height, width)
    box = image[top : top + height, left : left + width]
    return np.pad(box, ((rows, rows), (columns, columns), (0, 0)), constant_values=fill)


def prepared_image(cut: CutOut) -> np.ndarray:
    """(H, W, 3) uint8: the cut-out on white, framed, truncated to 8 bits (``prepared_image``)."""
    rgb = (np.round(cut.rgba[..., :3] * 255.0) / np.float32(255.0)).astype(np.float32)
    alpha = (np.round(cut.rgba[..., 3:] * 255.0) / np.float32(255.0)).astype(np.float32)
    on_white = rgb * alpha + np.float32(1.0) * (np.float32(1.0) - alpha)
    return (_framed(on_white, cut, 1.0) * np.float32(255.0)).astype(np.uint8)


def photo_canvas(cut: CutOut) -> np.ndarray:
    """(H, W, 4) float: the prepared image's frame at the image's own resolution, colours as
    photographed (not on white) and the mask as alpha (0 in the margin): for the photo stage."""
    return _framed(cut.rgba, cut, 0.0).astype(np.float32)


def pixel_values(prepared: np.ndarray, config: PreprocessorConfig) -> torch.Tensor:
    """(1, 3, S, S): the feature extractor's bicubic resize (Pillow, short side to
    ``shortest_edge``), centre crop, rescale and ImageNet normalisation."""
    height, width = prepared.shape[:2]
    short, long = sorted((height, width))
    scaled_long = int(config.shortest_edge * long / short)
    size = (config.shortest_edge, scaled_long) if width <= height else (scaled_long, config.shortest_edge)  # (w, h)
    resized = np.asarray(Image.fromarray(prepared, "RGB").resize(size, resample=config.resample, reducing_gap=None))
    top, left = (resized.shape[0] - config.crop_size) // 2, (resized.shape[1] - config.crop_size) // 2
    cropped = resized[top : top + config.crop_size, left : left + config.crop_size]
    scaled = (cropped.astype(np.float64) * config.rescale_factor).astype(np.float32)
    mean, std = np.array(config.image_mean, dtype=np.float32), np.array(config.image_std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1)))[None]


def model_input(cut: CutOut, config: PreprocessorConfig) -> torch.Tensor:
    return pixel_values(prepared_image(cut), config)
