"""From an image file or array to the (1, 3, S, S) tensor the model reads.

Steps: read as float RGBA; take the alpha channel as the object's mask when it holds
one, else ask the background remover for one; crop and rescale the object to the
foreground ratio of a square canvas; composite on white; resize to S x S the
published way (bicubic, align_corners true, clamped).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageSource = str | Path | np.ndarray | Image.Image
MaskFunction = Callable[[np.ndarray], np.ndarray]  # RGB float (H, W, 3) -> alpha (H, W)

MAX_PIXELS = 8192 * 8192
# An alpha channel counts as a mask when some pixel is clearly see-through ...
MASK_MIN_ALPHA = 0.99
# ... and a pixel belongs to the object when it is at least half opaque, so the faint
# halo a soft mask leaves around the object does not widen the object's box.
OBJECT_ALPHA = 0.5
VISIBLE_ALPHA = 0.5 / 255


def _check_size(width: int, height: int, name: str) -> None:
    if width == 0 or height == 0:
        raise ImageError(f"{name}: the image is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name}: {width}x{height} pixels is more than the limit of {MAX_PIXELS // 1_000_000} megapixels; "
            "scale the image down first"
        )


def _pil_to_rgba(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        grey = np.clip(grey, 0.0, 1.0)
        return np.dstack([grey, grey, grey, np.ones_like(grey)])
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.dstack([grey, grey, grey, np.ones_like(grey)])
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0


def _array_to_rgba(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"array of shape {array.shape} is not an image (expected HxW, HxWx1, HxWx3 or HxWx4)")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif array.dtype == np.bool_ or np.issubdtype(array.dtype, np.floating):
        values = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        raise ImageError(f"array of dtype {array.dtype} is not an image (expected uint8, uint16, bool or float)")
    channels = values.shape[2]
    colour = values[..., :1].repeat(3, axis=2) if channels <= 2 else values[..., :3]
    alpha = values[..., -1:] if channels in (2, 4) else np.ones_like(values[..., :1])
    return np.concatenate([colour, alpha], axis=2)


def read_rgba(source: ImageSource) -> np.ndarray:
    """Float32 (H, W, 4) in [0, 1] from a path, a PIL image or an array; alpha 1 where absent."""
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_size(source.shape[1], source.shape[0], "image array")
        return _array_to_rgba(source)
    if isinstance(source, Image.Image):
        _check_size(*source.size, "image")
        return _pil_to_rgba(source)
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            _check_size(*image.size, str(path))
            image.load()
            return _pil_to_rgba(image)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file that can be read (PNG, JPEG, WebP, BMP, TIFF ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: cannot read the image ({exc})") from None


def has_mask(rgba: np.ndarray) -> bool:
    return bool((rgba[..., 3] < MASK_MIN_ALPHA).any())


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def _resize(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    tensor = F.interpolate(tensor, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return tensor[0].permute(1, 2, 0).numpy()


def recenter(rgb: np.ndarray, mask: np.ndarray, foreground_ratio: float) -> np.ndarray:
    """Crop the object's box and scale it so its longer side is ``foreground_ratio`` of a
    white square canvas as large as the image's longer side, centred."""
    rows, cols = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = max(rgb.shape[:2])
    scale = size * foreground_ratio / max(bottom - top, right - left)
    height = max(1, round((bottom - top) * scale))
    width = max(1, round((right - left) * scale))
    canvas = np.ones((size, size, 3), dtype=np.float32)
    y, x = (size - height) // 2, (size - width) // 2
    canvas[y : y + height, x : x + width] = _resize(rgb[top:bottom, left:right], height, width)
    return canvas


def pad_to_square(rgb: np.ndarray) -> np.ndarray:
    """Centre on a white square so a non-square image is not squashed by the resize."""
    height, width = rgb.shape[:2]
    size = max(height, width)
    if height == width:
        return rgb
    canvas = np.ones((size, size, 3), dtype=np.float32)
    y, x = (size - height) // 2, (size - width) // 2
    canvas[y : y + height, x : x + width] = rgb
    return canvas


def to_model_input(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) float -> (1, 3, size, size): bicubic, align_corners true, clamped (published)."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    tensor = F.interpolate(tensor, size=(size, size), mode="bicubic", align_corners=True)
    return tensor.clamp(0.0, 1.0)


def prepare_image(
    source: ImageSource,
    size: int,
    remove_background: MaskFunction | None = None,
    recenter_object: bool = True,
    foreground_ratio: float = 0.8,
) -> torch.Tensor:
    """The model's input tensor. ``remove_background`` is used only when the image has no mask."""
    if not 0.0 < foreground_ratio <= 1.0:
        raise ImageError(f"foreground ratio must be in (0, 1], got {foreground_ratio}")
    rgba = read_rgba(source)
    if not (rgba[..., 3] > VISIBLE_ALPHA).any():
        raise ImageError("the image is fully transparent: there is no object to reconstruct")
    masked = has_mask(rgba)
    removed = not masked and remove_background is not None
    if removed:
        rgba = rgba.copy()
        rgba[..., 3] = remove_background(rgba[..., :3])
        masked = True
    mask = rgba[..., 3] > OBJECT_ALPHA
    if not mask.any():
        what = "background removal found no object" if removed else "no pixel is more than half opaque"
        raise ImageError(f"{what} in the image")
    rgb = composite_on_white(rgba)
    rgb = recenter(rgb, mask, foreground_ratio) if recenter_object and masked else pad_to_square(rgb)
    return to_model_input(rgb, size)
