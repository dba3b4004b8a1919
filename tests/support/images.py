"""Small test images, shared by the image, background and add-on tests (no PyTorch)."""

from __future__ import annotations

import numpy as np


def object_on_white(size: int = 64, box: tuple[int, int, int, int] = (20, 12, 44, 36)) -> np.ndarray:
    """Uint8 RGB: a dark red rectangle (top, left, bottom, right) on white."""
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    top, left, bottom, right = box
    image[top:bottom, left:right] = (150, 20, 20)
    return image


def object_with_alpha(size: int = 64, box: tuple[int, int, int, int] = (20, 12, 44, 36)) -> np.ndarray:
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    top, left, bottom, right = box
    rgba[top:bottom, left:right] = (150, 20, 20, 255)
    return rgba


def non_white_box(tensor) -> tuple[int, int, int, int]:
    """Bounding box (top, left, bottom, right) of the clearly non-white pixels of a (1, 3, S, S) tensor."""
    rows, cols = np.nonzero((tensor[0].numpy() < 0.9).any(axis=0))
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
