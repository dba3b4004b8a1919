"""TRELLIS's image preparation and image condition against what the published code computed
(../shared/vectors/trellis-tiny), and the real DINOv2-L/14-reg's layout against the published
keys (../shared/spec/keys-trellis.tsv)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from openlrm_blender.engine.errors import ImageError, WeightsError
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.models.dinov2 import Dinov2, Dinov2Config
from openlrm_blender.engine.models.trellis.image import SIZE, cut_out, photo_canvas, pixel_values, prepared_image
from openlrm_blender.engine.models.trellis.image_encoder import (
    image_condition,
    load_image_encoder,
    negative_condition,
)
from tests.conftest import SHARED, SPEC

VECTOR = SHARED / "vectors" / "trellis-tiny"
VIEWS = ("input.png", "view1.png", "view2.png")  # multi.npz's photos, in its order
# The published code ran on one thread with PyTorch's math attention kernel; ours may take
# another kernel and thread count, whose sums are ordered differently.
COND_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def vector() -> Path:
    if not (VECTOR / "dinov2" / "model.safetensors").is_file():
        pytest.fail(f"the shared tiny TRELLIS vector is missing: {VECTOR} (set OPENLRM_SHARED)")
    return VECTOR


@pytest.fixture(scope="module")
def encoder(vector: Path) -> Dinov2:
    return load_image_encoder(vector / "dinov2")


def published(vector: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(vector / name) as data:
        return {key: data[key] for key in ("prepared", "cond")}


def prepared_views(vector: Path, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([prepared_image(cut_out(read_rgba(vector / name))) for name in names])


def test_one_photo_is_prepared_and_encoded_as_published(vector, encoder):
    expected = published(vector, "expected.npz")
    prepared = prepared_views(vector, VIEWS[:1])
    np.testing.assert_array_equal(prepared[0], expected["prepared"])
    with torch.no_grad():
        cond = image_condition(encoder, pixel_values(list(prepared))).numpy()
    assert cond.shape == expected["cond"].shape == (1, 1374, 64)
    difference = float(np.abs(cond - expected["cond"]).max())
    print(f"one photo: cond differs from the published by at most {difference:.3g}")
    assert difference <= COND_TOLERANCE


def test_three_views_are_prepared_and_encoded_as_published(vector, encoder):
    expected = published(vector, "multi.npz")
    prepared = prepared_views(vector, VIEWS)
    np.testing.assert_array_equal(prepared, expected["prepared"])
    with torch.no_grad():
        cond = image_condition(encoder, pixel_values(list(prepared)))
    difference = float(np.abs(cond.numpy() - expected["cond"]).max())
    print(f"three views: cond differs from the published by at most {difference:.3g}")
    assert difference <= COND_TOLERANCE
    negative = negative_condition(cond)
    assert negative.shape == (1, 1374, 64) and not negative.any()


def test_the_photo_canvas_is_the_prepared_frame_unpremultiplied(vector):
    cut = cut_out(read_rgba(vector / "input.png"))
    canvas = photo_canvas(cut)
    assert canvas.shape == (SIZE, SIZE, 4) and canvas.dtype == np.float32
    assert canvas.min() >= 0.0 and canvas.max() <= 1.0
    premultiplied = (canvas[..., :3] * canvas[..., 3:] * np.float32(255.0)).astype(np.uint8)
    np.testing.assert_array_equal(premultiplied, prepared_image(cut))
    visible = canvas[..., 3] > 0.5
    assert (canvas[..., :3][visible].max(axis=1) > 0.05).mean() > 0.9  # colours as photographed, not darkened


def test_a_frame_past_the_edge_of_the_image_is_transparent_black():
    """An object along the left edge of the image: the square frame round it (34 px) reaches 12
    columns past the image on the left, transparent black there (Lanczos blurs 3 of them)."""
    rgba = np.zeros((30, 30, 4), np.float32)
    rgba[:, :10] = (0.2, 0.6, 0.4, 1.0)
    canvas = photo_canvas(cut_out(rgba))
    edge, blur = SIZE * 12 // 34, SIZE * 3 // 34
    assert not canvas[:, : edge - blur].any() and (canvas[blur:-blur, edge + blur, 3] > 0.9).all()
    np.testing.assert_allclose(canvas[SIZE // 2, SIZE // 2], (0.2, 0.6, 0.4, 1.0), atol=1 / 255)


def test_an_opaque_photo_is_cut_out_by_the_background_remover():
    """The remover sees the photo shrunk to 1024 px on its longer side; its mask becomes the
    alpha and, as rembg composites it, scales the colours."""
    rows, columns = np.mgrid[:1536, :2048]
    photo = read_rgba(np.dstack([columns // 8, rows // 6, np.full(rows.shape, 200)]).astype(np.uint8))  # RGB, no alpha
    seen = []

    def remover(rgb: np.ndarray) -> np.ndarray:
        seen.append(rgb)
        height, width = rgb.shape[:2]
        mask = np.zeros((height, width), np.float32)
        mask[height // 4 : height // 2, width // 4 : width // 2] = 1.0
        mask[height // 4 - 1, width // 4 : width // 2] = 0.5  # a soft edge
        return mask

    cut = cut_out(photo, remover)
    assert len(seen) == 1 and seen[0].shape == (768, 1024, 3) and seen[0].min() >= 0.0 and seen[0].max() <= 1.0
    assert cut.rgba.shape == (768, 1024, 4)
    alpha8 = np.round(cut.rgba[..., 3] * 255)
    np.testing.assert_array_equal(alpha8[192:384, 256:512], 255)
    np.testing.assert_array_equal(alpha8[191, 256:512], 128)
    assert alpha8.sum() == 255 * 192 * 256 + 128 * 256
    np.testing.assert_allclose(cut.rgba[..., :3], seen[0] * np.round(cut.rgba[..., 3:] * 255) / 255, atol=1.01 / 255)
    prepared = prepared_image(cut)
    assert prepared.shape == (SIZE, SIZE, 3) and prepared[0, 0].tolist() == [0, 0, 0] and prepared.max() > 100

    with pytest.raises(ImageError, match="transparent background"):
        cut_out(photo)
    with pytest.raises(ImageError, match="background removal found no object"):
        cut_out(photo, lambda rgb: np.zeros(rgb.shape[:2], np.float32))


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_an_image_with_no_opaque_object_is_refused_in_words(alpha):
    """Fully transparent, or nothing over the 80% opacity the frame is drawn round."""
    rgba = np.ones((64, 64, 4), np.float32)
    rgba[..., 3] = alpha
    with pytest.raises(ImageError, match="no pixel of the image is opaque"):
        cut_out(rgba, lambda rgb: np.ones(rgb.shape[:2], np.float32))


def test_the_encoder_config_is_read_in_both_layouts(vector, tmp_path):
    raw = {"model_type": "dinov2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "patch_size": 14}  # fmt: skip
    assert Dinov2Config.from_json(raw, tmp_path).num_register_tokens == 0
    registers = Dinov2Config.from_json(
        {**raw, "model_type": "dinov2_with_registers", "num_register_tokens": 4}, tmp_path
    )
    assert registers.num_register_tokens == 4
    with pytest.raises(WeightsError, match="not DINOv2"):
        Dinov2Config.from_json({**raw, "model_type": "vit"}, tmp_path)
    with pytest.raises(WeightsError, match="cannot divide hidden_size"):
        Dinov2Config.from_json({**raw, "num_attention_heads": 5}, tmp_path)
    folder = tmp_path / "dinov2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(raw))
    with pytest.raises(WeightsError, match="has none"):
        load_image_encoder(folder)


def hugging_face_names(hub_key: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """A tensor of DINOv2's hub state dict under Hugging Face's ``Dinov2WithRegisters`` names: the
    packed query/key/value split in three, the rest renamed."""
    block = re.fullmatch(r"blocks\.(\d+)\.(.+)", hub_key)
    if block is None:
        renamed = {"norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"}.get(hub_key)
        renamed = renamed or "embeddings." + hub_key.replace("pos_embed", "position_embeddings").replace(
            "patch_embed.proj", "patch_embeddings.projection"
        )
        return {renamed: shape}
    prefix, rest = f"encoder.layer.{block[1]}.", block[2]
    if rest.startswith("attn.qkv."):
        kind = rest.rpartition(".")[2]
        thirds = (shape[0] // 3, *shape[1:])
        return {f"{prefix}attention.attention.{part}.{kind}": thirds for part in ("query", "key", "value")}
    for hub, ours in (("attn.proj.", "attention.output.dense."), ("ls1.gamma", "layer_scale1.lambda1"),
                      ("ls2.gamma", "layer_scale2.lambda1")):  # fmt: skip
        rest = rest.replace(hub, ours)
    return {prefix + rest: shape}


def test_the_real_encoder_builds_exactly_the_published_keys():
    """DINOv2-L/14 with 4 registers at 518 px: the hub's 344 tensors of ``dinov2_vitl14_reg``,
    its query/key/value split, are our 440 at their shapes: 304,372,736 values."""
    published = {}
    for line in (SPEC / "keys-trellis.tsv").read_text().splitlines():
        component, key, shape, _ = line.split("\t")
        if component == "dinov2_vitl14_reg":
            published |= hugging_face_names(key, tuple(int(size) for size in shape.split("x")))
    config = Dinov2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, image_size=518, num_register_tokens=4
    )
    with torch.device("meta"):
        ours = {key: tuple(value.shape) for key, value in Dinov2(config).state_dict().items()}
    assert ours == published
    assert len(ours) == 440 and sum(math.prod(shape) for shape in ours.values()) == 304_372_736
