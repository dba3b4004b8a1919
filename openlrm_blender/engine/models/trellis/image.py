"""The image as the published TRELLIS pipeline prepares it (``preprocess_image`` and
``encode_image``): the object cut out, framed square round its opaque core, 518 px, its colours
premultiplied by its alpha (black round the object), 8-bit; then ImageNet's normalisation.

The framing is Pillow's own arithmetic and is left to Pillow: ``crop`` rounds the box's
half-pixel corners half to even and fills what lies past the image with transparent black, and
``resize`` of an RGBA image filters the colours premultiplied by alpha.

An image with some transparency is used as it is. Otherwise the published code runs rembg's
u2net, which hands back the photo composited over transparent black by the mask (so its colours
are darkened by the mask where it is soft); ours is the same model (``input.background``), its
mask laid on the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ...errors import ImageError
from ...input.prepare import CutOut, MaskFunction

SIZE = 518  # the image encoder's input: 37 x 37 patches of 14 px
LARGEST_SIDE = 1024  # an image given to the background remover is first shrunk to this
# The frame: pixels more opaque than this make the object's box, and the square's side is this
# much of the box's longer side.
BOX_ALPHA = 0.8 * 255
FRAME_SCALE = 1.2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _removed(rgb8: np.ndarray, remove_background: MaskFunction) -> np.ndarray:
    """(h, w, 4) uint8 as rembg returns it: the photo (shrunk, Lanczos, to ``LARGEST_SIDE``)
    composited over transparent black by the remover's mask."""
    image = Image.fromarray(rgb8, "RGB")
    scale = min(1.0, LARGEST_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    mask = remove_background(np.asarray(image, dtype=np.float32) / np.float32(255.0))
    mask8 = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.asarray(Image.composite(image, Image.new("RGBA", image.size, 0), Image.fromarray(mask8, "L")))


def cut_out(rgba: np.ndarray, remove_background: MaskFunction | None = None) -> CutOut:
    """The image, 8-bit as the published code reads it, with the object's mask in its alpha: its
    own alpha unless every pixel is opaque, else the background remover's."""
    rgba8 = np.round(np.clip(rgba, 0.0, 1.0) * 255.0).astype(np.uint8)
    removed = bool((rgba8[..., 3] == 255).all())
    if removed:
        if remove_background is None:
            raise ImageError(
                "the image has no transparent background to cut the object out by: give one with transparency, or "
                "turn background removal on"
            )
        rgba8 = _removed(rgba8[..., :3], remove_background)
    if not (rgba8[..., 3] > BOX_ALPHA).any():
        what = "background removal found no object in the image" if removed else "no pixel of the image is opaque"
        raise ImageError(f"{what} (TRELLIS frames the object by its pixels over 80% opaque): nothing to reconstruct")
    return CutOut(rgba8.astype(np.float32) / np.float32(255.0), True)


def _framed(cut: CutOut) -> Image.Image:
    """The RGBA cut-out cropped to the published square round the object and resized to
    ``SIZE`` (Lanczos); its colours straight, not premultiplied."""
    rgba8 = np.round(cut.rgba * 255.0).astype(np.uint8)
    rows, columns = np.nonzero(rgba8[..., 3] > BOX_ALPHA)
    left, top, right, bottom = columns.min(), rows.min(), columns.max(), rows.max()
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    half = max(int(max(right - left, bottom - top) * FRAME_SCALE) // 2, 1)  # 1: a one-pixel object still framed
    box = (centre_x - half, centre_y - half, centre_x + half, centre_y + half)
    return Image.fromarray(rgba8, "RGBA").crop(box).resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def prepared_image(cut: CutOut) -> np.ndarray:
    """(518, 518, 3) uint8: the framed object, colours times alpha in float32, truncated to 8
    bits (the published ``preprocess_image``'s result)."""
    framed = np.asarray(_framed(cut)).astype(np.float32) / np.float32(255.0)
    premultiplied = framed[..., :3] * framed[..., 3:4]
    return (premultiplied * np.float32(255.0)).astype(np.uint8)


def photo_canvas(cut: CutOut) -> np.ndarray:
    """(518, 518, 4) float in [0, 1]: the prepared image's frame with the colours as
    photographed (not premultiplied) and the mask as alpha (0 past the image's edges), for the
    photo stage to lay on the mesh."""
    return np.asarray(_framed(cut)).astype(np.float32) / np.float32(255.0)


def pixel_values(prepared: Sequence[np.ndarray]) -> torch.Tensor:
    """(N, 3, 518, 518) for N prepared images, as ``encode_image`` makes them: Lanczos to 518
    (the size they have: unchanged), scaled to [0, 1], ImageNet's mean and deviation taken out."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    images = []
    for image in prepared:
        resized = Image.fromarray(image, "RGB").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        scaled = np.asarray(resized).astype(np.float32) / np.float32(255.0)
        images.append(torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1))))
    return (torch.stack(images) - mean) / std
