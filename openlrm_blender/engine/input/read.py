"""Image files, PIL images and arrays, read as float RGBA; no PyTorch, so Blender's side
can read images (render results) before any model code is loaded.

Files are checked against a pixel limit before they are decoded (a small file can
declare a huge image), and large ones are reduced while decoding: the model sees a few
hundred pixels of the object, and a 64-megapixel photo as float RGBA would take 1 GB.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

ImageSource = str | Path | np.ndarray | Image.Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # what a folder of images holds
MAX_MEGAPIXELS = 67.0  # 8192 x 8192; raised only on request (--max-megapixels)
# Files whose longer side is beyond this are reduced by a whole factor while decoding;
# images up to it are read exactly as they are.
WORKING_SIDE = 4096


def _check_size(width: int, height: int, name: str, max_megapixels: float = MAX_MEGAPIXELS) -> None:
    if width == 0 or height == 0:
        raise ImageError(f"{name}: the image is empty ({width}x{height} pixels)")
    if width * height > max_megapixels * 1e6:
        raise ImageError(
            f"{name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is more than the limit of "
            f"{max_megapixels:g} megapixels, which guards against decompression bombs; scale the image down, or "
            f"raise the limit (command line: --max-megapixels {math.ceil(width * height / 1e6)})"
        )


def open_image(path: Path, max_megapixels: float = MAX_MEGAPIXELS) -> Image.Image:
    """The file opened and its size checked, nothing decoded yet: cheap enough to check
    every image of a batch before any model work."""
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    # Pillow's own guard warns from 89 and refuses from 179 megapixels; ours replaces it,
    # with a limit the caller can raise.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is not None and max_megapixels * 1e6 > pillow_limit:
        Image.MAX_IMAGE_PIXELS = math.ceil(max_megapixels * 1e6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file that can be read (PNG, JPEG, WebP, BMP, TIFF ...)") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"{path}: more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, over the limit of "
            f"{max_megapixels:g} megapixels, which guards against decompression bombs; scale the image down, or "
            "raise the limit (command line: --max-megapixels)"
        ) from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the image ({exc})") from None
    try:
        _check_size(*image.size, str(path), max_megapixels)
    except ImageError:
        image.close()
        raise
    return image


def _decode_reduced(image: Image.Image) -> Image.Image:
    """The decoded image, reduced by a whole factor when its longer side is over WORKING_SIDE."""
    factor = math.ceil(max(image.size) / WORKING_SIDE)
    if factor > 1:
        image.draft(None, (image.width // factor, image.height // factor))  # JPEG: decode at 1/2, 1/4, 1/8
        factor = math.ceil(max(image.size) / WORKING_SIDE)
    image.load()
    if factor > 1:
        try:
            return image.reduce(factor)
        except ValueError:  # modes reduce() does not take (16-bit grey)
            return image.resize((image.width // factor, image.height // factor), Image.Resampling.BOX)
    return image


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
        values = np.clip(array.astype(np.float32, copy=False), 0.0, 1.0)  # one copy, not two
    else:
        raise ImageError(f"array of dtype {array.dtype} is not an image (expected uint8, uint16, bool or float)")
    channels = values.shape[2]
    colour = values[..., :1].repeat(3, axis=2) if channels <= 2 else values[..., :3]
    alpha = values[..., -1:] if channels in (2, 4) else np.ones_like(values[..., :1])
    return np.concatenate([colour, alpha], axis=2)


def read_rgba(source: ImageSource, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """Float32 (H, W, 4) in [0, 1] from a path, a PIL image or an array; alpha 1 where absent.

    Files with a longer side over WORKING_SIDE come back reduced (see the module's docstring).
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_size(source.shape[1], source.shape[0], "image array", max_megapixels)
        return _array_to_rgba(source)
    if isinstance(source, Image.Image):
        _check_size(*source.size, "image", max_megapixels)
        return _pil_to_rgba(source)
    path = Path(source)
    with open_image(path, max_megapixels) as image:
        try:
            return _pil_to_rgba(ImageOps.exif_transpose(_decode_reduced(image)))  # photos stand as they were taken
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{path}: cannot read the image ({exc})") from None
