"""An image datablock's pixels as the engine takes them, read in Blender's main thread."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

import numpy as np

from ..engine import EngineError
from ..engine.input.read import read_rgba


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def image_pixels(image: bpy.types.Image) -> np.ndarray:
    """The image as float RGBA rows top to bottom, read here in the main thread.

    Byte images hold sRGB values already; float images (EXR, renders) are linear and are
    encoded to sRGB so the model sees what the user sees.
    """
    if image.type == "RENDER_RESULT":
        with tempfile.TemporaryDirectory(prefix="openlrm-") as folder:
            path = Path(folder) / "render.png"
            image.save_render(str(path))
            return read_rgba(path)
    width, height = image.size
    if width == 0 or height == 0:
        raise EngineError(f"image '{image.name}' has no pixels (is its file missing?)")
    channels = image.channels
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    pixels = buffer.reshape(height, width, channels)[::-1]
    if image.is_float:
        pixels = pixels.copy()
        pixels[..., :3] = linear_to_srgb(pixels[..., : min(3, channels)])
    return np.ascontiguousarray(pixels)
