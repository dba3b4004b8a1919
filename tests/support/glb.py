"""A GLB read back as a viewer would: its JSON and binary chunks, accessors as arrays, and
a textured mesh's arrays in our frame."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def read_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A
    document = json.loads(data[20 : 20 + json_length])
    binary_length, binary_type = struct.unpack_from("<II", data, 20 + json_length)
    assert binary_type == 0x004E4942
    return document, data[28 + json_length : 28 + json_length + binary_length]


def accessor(document: dict, binary: bytes, index: int) -> np.ndarray:
    info = document["accessors"][index]
    view = document["bufferViews"][info["bufferView"]]
    dtype = {5126: np.float32, 5125: np.uint32}[info["componentType"]]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[info["type"]]
    data = np.frombuffer(binary, dtype, count=info["count"] * width, offset=view["byteOffset"])
    return data.reshape(info["count"], width) if width > 1 else data


def textured_mesh(path: Path) -> dict[str, np.ndarray]:
    """Vertices (our frame: +Z up), faces, UVs (v up, as ours) and the texture (float RGB)."""
    document, binary = read_glb(path.read_bytes())
    (primitive,) = document["meshes"][0]["primitives"]
    positions = accessor(document, binary, primitive["attributes"]["POSITION"])
    uvs = accessor(document, binary, primitive["attributes"]["TEXCOORD_0"])
    view = document["bufferViews"][document["images"][0]["bufferView"]]
    png = binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
    return {
        "vertices": np.stack([positions[:, 0], -positions[:, 2], positions[:, 1]], axis=1),  # glTF is +Y up
        "faces": accessor(document, binary, primitive["indices"]).reshape(-1, 3).astype(np.int64),
        "uvs": np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1),  # glTF's v runs down
        "texture": np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255.0,
    }
