"""Image reading in every format and mode, masks, recentring, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from openlrm_blender.engine import ImageError
from openlrm_blender.engine.input.prepare import composite_on_white, has_mask, prepare_image
from openlrm_blender.engine.input.read import MAX_MEGAPIXELS, WORKING_SIDE, read_rgba
from tests.support.images import non_white_box, object_on_white, object_with_alpha

SIZE = 56


@pytest.mark.parametrize(
    "mode, suffix",
    [
        ("RGB", ".png"),
        ("RGBA", ".png"),
        ("L", ".png"),
        ("LA", ".png"),
        ("P", ".png"),
        ("I;16", ".png"),
        ("1", ".png"),
        ("RGB", ".jpg"),
        ("L", ".jpg"),
        ("RGB", ".webp"),
        ("RGBA", ".webp"),
        ("RGB", ".bmp"),
        ("RGB", ".tif"),
        ("RGBA", ".tif"),
        ("I;16", ".tif"),
        ("CMYK", ".tif"),
    ],
)
def test_formats_and_modes(tmp_path, mode, suffix):
    rgba = Image.fromarray(object_with_alpha())
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    if mode in ("RGBA", "LA"):
        image = rgba.convert(mode)
    elif mode == "I;16":
        image = Image.fromarray((np.asarray(on_white.convert("L"), dtype=np.uint16) * 257).astype("<u2"))
    else:
        image = on_white.convert(mode)
    path = tmp_path / f"image{suffix}"
    image.save(path)
    pixels = read_rgba(path)
    assert pixels.shape == (64, 64, 4) and pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    # on white, the object is darker than the background whatever the mode
    seen = composite_on_white(pixels)
    assert seen[32, 24].mean() < seen[2, 2].mean() - 0.2
    assert has_mask(pixels) == (mode in ("RGBA", "LA"))
    tensor = prepare_image(read_rgba(path), SIZE, remove_background=None)
    assert tensor.shape == (1, 3, SIZE, SIZE)


def test_palette_with_transparency_is_a_mask(tmp_path):
    path = tmp_path / "palette.png"
    Image.fromarray(object_with_alpha()).quantize(colors=4).save(path, transparency=0)
    assert has_mask(read_rgba(path))


def test_sixteen_bit_values_are_scaled():
    values = np.array([[0, 65535], [32768, 65535]], dtype=np.uint16)
    assert read_rgba(values)[..., 0] == pytest.approx(np.array([[0, 1], [32768 / 65535, 1]]))
    assert read_rgba(Image.fromarray(values.astype("<u2")))[0, 1, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_arrays(dtype, channels):
    scale = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1.0)
    base = np.full((10, 12), 0.5)
    array = base if channels is None else np.repeat(base[..., None], channels, axis=2)
    pixels = read_rgba((array * scale).astype(dtype))
    assert pixels.shape == (10, 12, 4)
    assert pixels[..., :3] == pytest.approx(0.5, abs=1 / 255)
    assert pixels[..., 3] == pytest.approx(0.5 if channels == 4 else 1.0, abs=1 / 255)


def test_alpha_mask_is_used_and_recentred():
    """The object's longer side becomes the foreground ratio of the square, centred."""
    tensor = prepare_image(read_rgba(object_with_alpha()), SIZE, remove_background=None, foreground_ratio=0.8)
    top, left, bottom, right = non_white_box(tensor)
    assert max(bottom - top, right - left) == pytest.approx(0.8 * SIZE, abs=2)
    assert (top + bottom) / 2 == pytest.approx(SIZE / 2, abs=1.5)
    assert (left + right) / 2 == pytest.approx(SIZE / 2, abs=1.5)
    smaller = prepare_image(read_rgba(object_with_alpha()), SIZE, remove_background=None, foreground_ratio=0.5)
    top, left, bottom, right = non_white_box(smaller)
    assert max(bottom - top, right - left) == pytest.approx(0.5 * SIZE, abs=2)


def test_no_recenter_keeps_the_layout_and_pads_non_square():
    wide = np.full((40, 80, 3), 255, dtype=np.uint8)
    wide[10:30, 60:70] = 0
    tensor = prepare_image(read_rgba(wide), SIZE, remove_background=None, recenter_object=False)
    top, left, _, right = non_white_box(tensor)
    # 80 px wide canvas -> 56 px: the column 60..70 maps to about 42..49, rows pad by 20 px
    assert left == pytest.approx(60 * SIZE / 80, abs=2) and right == pytest.approx(70 * SIZE / 80, abs=2)
    assert top == pytest.approx((20 + 10) * SIZE / 80, abs=2)


def test_mask_function_is_called_only_without_alpha():
    calls = []

    def fake_mask(rgb):
        calls.append(rgb.shape)
        return (rgb.mean(axis=2) < 0.9).astype(np.float32)

    prepare_image(read_rgba(object_with_alpha()), SIZE, remove_background=fake_mask)
    assert calls == []
    tensor = prepare_image(read_rgba(object_on_white()), SIZE, remove_background=fake_mask)
    assert calls == [(64, 64, 3)]
    top, left, bottom, right = non_white_box(tensor)
    assert max(bottom - top, right - left) == pytest.approx(0.8 * SIZE, abs=2)


def test_empty_image():
    with pytest.raises(ImageError, match=r"the image is empty \(0x0 pixels\)"):
        prepare_image(read_rgba(np.zeros((0, 0, 3), dtype=np.uint8)), SIZE)


def test_fully_transparent_image(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(path)
    with pytest.raises(ImageError, match="fully transparent"):
        prepare_image(read_rgba(path), SIZE)


def test_too_many_pixels(tmp_path):
    side = int((MAX_MEGAPIXELS * 1e6) ** 0.5) + 64
    path = tmp_path / "huge.png"
    Image.new("L", (side, side)).save(path)  # compresses to a few kB; never decoded
    with pytest.raises(
        ImageError, match=rf"huge\.png: {side}x{side} pixels \(68 megapixels\) is more than the limit of 67"
    ):
        prepare_image(read_rgba(path), SIZE)


@pytest.mark.parametrize("megapixels", [100, 200])
def test_our_limit_replaces_pillows_bomb_guard(tmp_path, megapixels):
    """Pillow warns from 89 and refuses from 179 megapixels in its own words; ours speaks
    instead, says how to go past it, and nothing is decoded."""
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, megapixels * 100)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail the test
        with pytest.raises(ImageError, match=r"bomb\.png: .*limit of 67 megapixels.*--max-megapixels") as raised:
            read_rgba(path)
    assert "decompression bombs; scale the image down, or raise the limit" in str(raised.value)


def test_a_raised_limit_reads_a_large_image_reduced_while_decoding(tmp_path):
    path = tmp_path / "large.png"
    Image.new("RGB", (12_000, 9_000), (200, 100, 50)).save(path)  # 108 megapixels
    with pytest.raises(ImageError, match="108 megapixels"):
        read_rgba(path)
    rgba = read_rgba(path, max_megapixels=110)
    assert rgba.shape == (9_000 // 3, 12_000 // 3, 4) and max(rgba.shape) <= WORKING_SIDE
    np.testing.assert_allclose(rgba[100, 100], [200 / 255, 100 / 255, 50 / 255, 1.0], atol=1e-6)


def test_images_up_to_the_working_side_are_read_as_they_are(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (WORKING_SIDE, 300, 3), dtype=np.uint8)
    path = tmp_path / "tall.png"
    Image.fromarray(pixels).save(path)
    np.testing.assert_array_equal(np.round(read_rgba(path)[..., :3] * 255).astype(np.uint8), pixels)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.png: not an image file that can be read"):
        prepare_image(read_rgba(path), SIZE)
    with pytest.raises(ImageError, match=r"missing\.png: file not found"):
        prepare_image(read_rgba(tmp_path / "missing.png"), SIZE)


def test_no_object_found():
    with pytest.raises(ImageError, match="background removal found no object"):
        prepare_image(read_rgba(object_on_white()), SIZE, remove_background=lambda rgb: np.zeros(rgb.shape[:2]))


def test_a_photo_stands_as_it_was_taken(tmp_path):
    """A camera's orientation tag is applied (rembg does the same before its mask)."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :10] = 255  # a white band on the left of the stored pixels
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    rgba = read_rgba(tmp_path / "rotated.jpg")
    assert rgba.shape == (40, 20, 4)
    assert rgba[:10, :, :3].mean() > 0.9 and rgba[20:, :, :3].mean() < 0.1  # the band is now on top
