"""Image files, PIL images and arrays, read as float RGBA; no PyTorch, so Blender's side
can read images (render results) before any model code is loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageSource = str | Path | np.ndarray | Image.Image

MAX_PIXELS = 8192 * 8192

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
