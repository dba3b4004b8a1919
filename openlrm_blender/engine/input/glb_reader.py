"""Binary glTF 2.0 (.glb) read as one triangle mesh: every triangle primitive (mode 4, or none
given) of every node of the default scene, in scene order (depth first, children in order),
each moved by its node's transform (a matrix, or translation, rotation and scale), indexed or
not, merged into one vertex list.

glTF is +Y up, the engine +Z up: a point (x, y, z) comes in as (x, -z, y), as Blender's glTF
importer turns it, the inverse of what engine/export/gltf.py writes, so a mesh we exported reads
back as it was. Data outside the file (a .gltf's .bin, a buffer's uri), sparse accessors and
compressed meshes (Draco, meshopt) are refused in words.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from ..errors import MeshFileError
from .mesh_size import check_size

_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_COMPONENTS = {5120: "<i1", 5121: "<u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_FLOAT, _INDEX_TYPES = 5126, (5121, 5123, 5125)
_TRIANGLES = 4
_COMPRESSIONS = ("KHR_draco_mesh_compression", "EXT_meshopt_compression")


class _Invalid(Exception):
    """What makes a document no glTF we can read; said as the reader's one sentence."""


def read_glb(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 in the engine's frame, and triangles (F, 3)."""
    if len(data) < 12 or struct.unpack_from("<I", data)[0] != _MAGIC:
        raise MeshFileError(f"{name}: not a binary glTF file (it does not begin with 'glTF')")
    version = struct.unpack_from("<I", data, 4)[0]
    if version != 2:
        raise MeshFileError(f"{name}: a glTF {version} file; only glTF 2.0 can be read")
    try:
        document, binary = _chunks(data)
        vertices, faces = _scene(document, binary, name)
    except _Invalid as exc:
        raise MeshFileError(f"{name}: not a valid GLB: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:  # the JSON is not laid out as glTF says
        raise MeshFileError(f"{name}: not a valid GLB: its JSON does not describe glTF 2.0 ({exc!r})") from None
    zup = np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], axis=1)
    return zup, faces


def _chunks(data: bytes) -> tuple[dict, memoryview]:
    """The JSON document and the binary chunk (empty when there is none)."""
    position, chunks = 12, {}
    end = min(len(data), struct.unpack_from("<I", data, 8)[0])
    while position + 8 <= end:
        length, kind = struct.unpack_from("<II", data, position)
        if position + 8 + length > end:
            raise _Invalid("a chunk runs past the end of the file")
        chunks.setdefault(kind, memoryview(data)[position + 8 : position + 8 + length])
        position += 8 + length
    if _JSON not in chunks:
        raise _Invalid("it has no JSON chunk")
    try:
        document = json.loads(bytes(chunks[_JSON]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Invalid("its JSON chunk cannot be read") from None
    if not isinstance(document, dict):
        raise _Invalid("its JSON chunk is not an object")
    for extension in _COMPRESSIONS:
        if extension in document.get("extensionsUsed", []):
            raise _Invalid(f"its meshes are compressed ({extension}), which cannot be read; export it uncompressed")
    return document, chunks.get(_BIN, memoryview(b""))


def _scene(document: dict, binary: memoryview, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The default scene's triangle primitives, each moved by its node's world transform, merged."""
    placed = _placed_primitives(document)
    accessors = document.get("accessors", [])
    counts = [accessors[p["attributes"]["POSITION"]]["count"] for _, p in placed]
    check_size(name, vertices=sum(counts))
    check_size(name, triangles=sum(_triangle_count(accessors, p, n) for (_, p), n in zip(placed, counts, strict=True)))
    vertices, faces, offset = [], [], 0
    for world, primitive in placed:
        position = accessors[primitive["attributes"]["POSITION"]]
        if position["type"] != "VEC3" or position["componentType"] != _FLOAT:
            raise _Invalid("a primitive's positions are not three floats (a quantised mesh cannot be read)")
        positions = _accessor(document, binary, primitive["attributes"]["POSITION"]).astype(np.float64)
        if "indices" in primitive:
            if accessors[primitive["indices"]]["componentType"] not in _INDEX_TYPES:
                raise _Invalid("a primitive's indices are not unsigned integers")
            indices = _accessor(document, binary, primitive["indices"]).ravel().astype(np.int64)
        else:
            indices = np.arange(len(positions), dtype=np.int64)
        if len(indices) % 3 or (len(indices) and indices.max() >= len(positions)):
            raise _Invalid("a primitive's indices are not whole triangles of its own vertices")
        vertices.append(positions @ world[:3, :3].T + world[:3, 3])
        faces.append(indices.reshape(-1, 3) + offset)
        offset += len(positions)
    if not vertices:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(vertices), np.concatenate(faces)


def _placed_primitives(document: dict) -> list[tuple[np.ndarray, dict]]:
    """(world matrix, primitive) for the default scene's triangle primitives, depth first."""
    scenes = document.get("scenes", [])
    nodes = document.get("nodes", [])
    if scenes:
        roots = scenes[document.get("scene", 0)].get("nodes", [])
    else:  # no scene: the nodes no other node holds
        held = {child for node in nodes for child in node.get("children", [])}
        roots = [index for index in range(len(nodes)) if index not in held]
    placed = []  # (world matrix, primitive) in scene order
    stack, visits = [(index, np.eye(4)) for index in reversed(roots)], 0
    while stack:
        index, parent = stack.pop()
        visits += 1
        if visits > len(nodes):  # a node met twice: the nodes do not form trees
            raise _Invalid("a node is held by two parents or by itself")
        node = nodes[index]
        world = parent @ _local(node)
        if "mesh" in node:
            placed += [(world, p) for p in document["meshes"][node["mesh"]]["primitives"] if _is_triangles(p)]
        stack += [(child, world) for child in reversed(node.get("children", []))]
    return placed


def _is_triangles(primitive: dict) -> bool:
    return primitive.get("mode", _TRIANGLES) == _TRIANGLES and "POSITION" in primitive["attributes"]


def _triangle_count(accessors: list, primitive: dict, vertices: int) -> int:
    return (accessors[primitive["indices"]]["count"] if "indices" in primitive else vertices) // 3


def _local(node: dict) -> np.ndarray:
    """A node's transform: its matrix (column by column), or translation @ rotation @ scale."""
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T
    x, y, z, w = node.get("rotation", (0.0, 0.0, 0.0, 1.0))
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    local = np.eye(4)
    local[:3, :3] = rotation * np.array(node.get("scale", (1.0, 1.0, 1.0)), dtype=np.float64)
    local[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return local


def _accessor(document: dict, binary: memoryview, index: int) -> np.ndarray:
    """An accessor's values (count, components), read through its buffer view's stride."""
    accessor = document["accessors"][index]
    if "sparse" in accessor:
        raise _Invalid("it uses a sparse accessor, which cannot be read")
    if "bufferView" not in accessor:
        raise _Invalid("an accessor has no buffer view")
    view = document["bufferViews"][accessor["bufferView"]]
    if document["buffers"][view["buffer"]].get("uri") is not None:
        raise _Invalid("its data is in a separate file or a data URI; export everything into the .glb")
    dtype = np.dtype(_COMPONENTS[accessor["componentType"]])
    width, count = _WIDTHS[accessor["type"]], accessor["count"]
    stride = view.get("byteStride", dtype.itemsize * width)
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    end = view.get("byteOffset", 0) + view["byteLength"]
    if count < 0 or end > len(binary) or (count and start + stride * (count - 1) + dtype.itemsize * width > end):
        raise _Invalid("an accessor runs past the end of its data")
    return np.ndarray((count, width), dtype, buffer=binary, offset=start, strides=(stride, dtype.itemsize)).copy()
