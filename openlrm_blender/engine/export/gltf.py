"""Binary glTF 2.0 (.glb): one mesh with positions, normals, UVs and indices, and a
material whose base colour is the baked texture, embedded as PNG. Without a texture the
vertex colours go into COLOR_0 (glTF's vertex colours are linear, ours are sRGB).

glTF is +Y up with the front facing +Z; the engine is +Z up with the input view looking
from -Y. A point (x, y, z) is written as (x, z, -y), as Blender's own glTF exporter does,
so the object stands upright in any viewer and comes back as it was into Blender.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np

from ..geometry.normals import vertex_normals
from ..result import Mesh

FLOAT, UNSIGNED_INT = 5126, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
TRIANGLES = 4


def to_gltf_frame(points: np.ndarray) -> np.ndarray:
    return np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1).astype(np.float32)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


class _Buffer:
    """The binary chunk, and the buffer views and accessors that point into it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, payload: bytes, target: int | None = None) -> int:
        while len(self.data) % 4:
            self.data.append(0)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(payload)}
        if target is not None:
            view["target"] = target
        self.data.extend(payload)
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int, bounds: bool = False) -> int:
        component = UNSIGNED_INT if array.dtype == np.uint32 else FLOAT
        accessor = {
            "bufferView": self.view(np.ascontiguousarray(array).tobytes(), target),
            "componentType": component,
            "count": len(array) if kind != "SCALAR" else array.size,
            "type": kind,
        }
        if bounds:
            accessor["min"], accessor["max"] = array.min(axis=0).tolist(), array.max(axis=0).tolist()
        self.accessors.append(accessor)
        return len(self.accessors) - 1


def glb_bytes(mesh: Mesh, name: str = "OpenLRM") -> bytes:
    buffer = _Buffer()
    positions = to_gltf_frame(mesh.vertices)
    normals = vertex_normals(mesh.vertices, mesh.faces) if mesh.normals is None else mesh.normals
    attributes = {
        "POSITION": buffer.accessor(positions, "VEC3", ARRAY_BUFFER, bounds=True),
        "NORMAL": buffer.accessor(to_gltf_frame(normals), "VEC3", ARRAY_BUFFER),
    }
    material = {"name": name, "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0}}
    document: dict = {"asset": {"version": "2.0", "generator": "OpenLRM for Blender"}}
    if mesh.textured:
        uvs = np.stack([mesh.uvs[:, 0], 1.0 - mesh.uvs[:, 1]], axis=1).astype(np.float32)  # glTF's v runs down
        attributes["TEXCOORD_0"] = buffer.accessor(uvs, "VEC2", ARRAY_BUFFER)
        png = io.BytesIO()
        from PIL import Image

        Image.fromarray(mesh.texture, "RGB").save(png, "PNG")
        document["images"] = [{"bufferView": buffer.view(png.getvalue()), "mimeType": "image/png"}]
        document["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}]
        document["textures"] = [{"source": 0, "sampler": 0}]
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    else:
        attributes["COLOR_0"] = buffer.accessor(srgb_to_linear(mesh.colours_u8 / 255.0), "VEC3", ARRAY_BUFFER)
    indices = buffer.accessor(mesh.faces.astype(np.uint32).reshape(-1), "SCALAR", ELEMENT_ARRAY_BUFFER)
    document.update(
        scene=0,
        scenes=[{"nodes": [0]}],
        nodes=[{"mesh": 0, "name": name}],
        meshes=[
            {
                "name": name,
                "primitives": [{"attributes": attributes, "indices": indices, "material": 0, "mode": TRIANGLES}],
            }
        ],
        materials=[material],
        accessors=buffer.accessors,
        bufferViews=buffer.views,
        buffers=[{"byteLength": len(buffer.data)}],
    )
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary = bytes(buffer.data) + b"\0" * (-len(buffer.data) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks
