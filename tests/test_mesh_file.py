"""Reading a user's mesh to paint (engine/input/mesh_file.py): PLY in its three encodings with
polygons and properties it does not need, OBJ in every face form, GLB from our exporter and
written by hand with node transforms; our own writer's files read back unchanged; and each
refusal's sentence."""

from __future__ import annotations

import json
import struct

import numpy as np
import plyfile
import pytest

from openlrm_blender.engine.errors import MeshFileError
from openlrm_blender.engine.export.mesh_files import write_mesh
from openlrm_blender.engine.input.mesh_file import read_mesh
from openlrm_blender.engine.result import Mesh

ENCODINGS = [(True, "="), (False, "<"), (False, ">")]  # (text, byte order): ascii, little, big endian
POSITIONS = np.array([[0.1, -2.5, 3.0], [1.0 / 3, 0.0, -1e-9], [2.0, 1.0, 0.5], [-0.7, 0.25, 1e5], [0.0, 0.0, 1.0]])


def _ply(path, elements, text, order):
    plyfile.PlyData(elements, text=text, byte_order=order).write(str(path))
    return path


def _lists(rows, dtype):
    column = np.empty(len(rows), dtype=object)
    column[:] = [np.array(row, dtype=dtype) for row in rows]
    return column


_PACK = {"char": "b", "uchar": "B", "short": "h", "ushort": "H", "int": "i", "uint": "I", "float": "f", "double": "d"}
_FORMATS = {"=": "ascii", "<": "binary_little_endian", ">": "binary_big_endian"}


def _hand_written_ply(path, elements, order):
    """A PLY written here by hand (plyfile stores the single values of an element with lists
    in the machine's byte order whatever the file's): elements as (name, properties as (name,
    type, list length type or None), rows of numbers and lists)."""
    header, body = ["ply", f"format {_FORMATS[order]} 1.0"], []
    for name, properties, rows in elements:
        header.append(f"element {name} {len(rows)}")
        header += [
            f"property list {count} {kind} {prop}" if count else f"property {kind} {prop}"
            for prop, kind, count in properties
        ]
        for row in rows:
            words, record = [], b""
            for value, (_, kind, count) in zip(row, properties, strict=True):
                values = [len(value), *value] if count else [value]
                kinds = [count] + [kind] * len(value) if count else [kind]
                words += [repr(v) for v in values]
                record += b"".join(struct.pack(order + _PACK[k], v) for k, v in zip(kinds, values, strict=True))
            body.append((" ".join(words) + "\n").encode() if order == "=" else record)
    path.write_bytes(("\n".join([*header, "end_header"]) + "\n").encode() + b"".join(body))
    return path


def _polygon_ply(path, order):
    """Double coordinates among other vertex properties (a list of differing lengths among them);
    a quad, a triangle and a pentagon with a value before and a list after their corners;
    elements before and between to step over."""
    vertex = [("quality", "float", None), ("x", "double", None), ("weights", "float", "uchar")]
    vertex += [("y", "double", None), ("z", "double", None), ("red", "uchar", None)]
    weights = [[], [1.0], [2.0, 3.0], [], [4.0]]
    face = [("flags", "short", None), ("vertex_indices", "int", "uchar"), ("texcoord", "float", "uint")]
    elements = [
        ("camera", [("view", "float", None), ("id", "short", None)], [(1.5, 2)]),
        ("vertex", vertex, [(7.0, x, w, y, z, 200) for (x, y, z), w in zip(POSITIONS.tolist(), weights, strict=True)]),
        ("material", [("name", "uchar", "ushort"), ("shine", "float", None)], [([1, 2, 3], 0.5), ([4], 0.5)]),
        ("face", face, [(-3, [0, 1, 2, 3], [0.5] * 8), (-3, [0, 3, 4], [0.25] * 6), (-3, [4, 3, 2, 1, 0], [])]),
    ]
    return _hand_written_ply(path, elements, order)


FANNED = [[0, 1, 2], [0, 2, 3], [0, 3, 4], [4, 3, 2], [4, 2, 1], [4, 1, 0]]


@pytest.mark.parametrize("order", ["=", "<", ">"])
def test_ply_polygons_are_fanned_in_order_and_other_properties_stepped_over(tmp_path, order):
    mesh = read_mesh(_polygon_ply(tmp_path / "polygons.ply", order))
    assert mesh.format == "ply" and mesh.faces.dtype == np.int64 and mesh.vertices.dtype == np.float64
    np.testing.assert_array_equal(mesh.vertices, POSITIONS)
    np.testing.assert_array_equal(mesh.faces, FANNED)


@pytest.mark.parametrize(("text", "order"), ENCODINGS)
@pytest.mark.parametrize(
    ("count_type", "index_type", "list_name"),
    [
        ("u1", "i4", "vertex_indices"),
        ("u2", "u4", "vertex_index"),
        ("i4", "i2", "vertex_indices"),
        ("i1", "u1", "vertex_index"),
    ],
)
def test_ply_triangles_of_any_list_types_and_float_positions(tmp_path, text, order, count_type, index_type, list_name):
    vertex = np.zeros(5, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("s", "f4"), ("t", "f4")])
    vertex["x"], vertex["y"], vertex["z"] = POSITIONS.astype(np.float32).T
    triangles = [[0, 1, 2], [2, 1, 4], [3, 4, 0], [4, 3, 2]]
    face = np.empty(4, dtype=[(list_name, object), ("texcoord", object)])
    face[list_name] = _lists(triangles, index_type)
    face["texcoord"] = _lists([[0.5] * 6] * 4, "f4")
    elements = [
        plyfile.PlyElement.describe(vertex, "vertex"),
        plyfile.PlyElement.describe(
            face, "face", len_types={list_name: count_type, "texcoord": "u1"}, val_types={list_name: index_type}
        ),
    ]
    mesh = read_mesh(_ply(tmp_path / "triangles.ply", elements, text, order))
    assert mesh.vertices.dtype == (np.float64 if text else np.float32)
    np.testing.assert_array_equal(mesh.vertices, POSITIONS.astype(np.float32))
    np.testing.assert_array_equal(mesh.faces, triangles)


def test_ply_integer_coordinates_and_windows_line_ends(tmp_path):
    path = tmp_path / "crlf.ply"
    header = (
        "ply\r\nformat ascii 1.0\r\nelement vertex 3\r\nproperty short x\r\nproperty short y\r\nproperty short z\r\n"
    )
    header += "element face 1\r\nproperty list uchar int vertex_indices\r\nend_header\r\n"
    path.write_bytes((header + "1 2 3\r\n-4 5 6\r\n7 8 -9\r\n3 2 1 0\r\n").encode())
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices, [[1, 2, 3], [-4, 5, 6], [7, 8, -9]])
    np.testing.assert_array_equal(mesh.faces, [[2, 1, 0]])


OBJ = """# every face form
mtllib thing.mtl
o thing
v 0 0 0
v 1 0 0 1.0
v 1 1 0 0.5 0.5 0.5
v 0 1 0
vt 0 0
vn 0 0 1
usemtl m
s off
f 1 2 3
f 1/1 3/1 4/1
f 1/1/1 2/1/1 3/1/1 4/1/1
f 1//1 2//1 4//1
f -4 -3 -2
g later
v 2.5 -2 1e-3
f -1/1 1/1 2/1
l 1 2
f 5 4 3 2 1
"""


def test_obj_faces_in_every_form_with_negative_numbers_and_polygons(tmp_path):
    path = tmp_path / "forms.obj"
    path.write_text(OBJ)
    mesh = read_mesh(path)
    assert mesh.format == "obj"
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2.5, -2, 1e-3]])
    expected = [[0, 1, 2], [0, 2, 3], [0, 1, 2], [0, 2, 3], [0, 1, 3], [0, 1, 2], [4, 0, 1]]
    expected += [[4, 3, 2], [4, 2, 1], [4, 1, 0]]
    np.testing.assert_array_equal(mesh.faces, expected)


def _glb(document: dict, binary: bytes) -> bytes:
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks


def _hand_made_glb() -> bytes:
    """Scene 1 (the default): a parent moved by translation, rotation and scale, its child by a
    matrix; one mesh with an indexed (uint16) triangle primitive, interleaved with normals,
    a non-indexed one, and lines to skip. Scene 0 holds a node that must not be read."""
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float32)
    interleaved = np.hstack([square, np.zeros_like(square)]).astype(np.float32).tobytes()  # stride 24
    indices = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint16).tobytes()
    loose = np.array([[0, 0, 1], [0, 0, 2], [0, 1, 2]], dtype=np.float32).tobytes()
    binary = interleaved + indices + loose
    document = {
        "asset": {"version": "2.0"},
        "scene": 1,
        "scenes": [{"nodes": [2]}, {"nodes": [0]}],
        "nodes": [
            {
                "translation": [10, 20, 30],
                "rotation": [0, 0.7071067811865476, 0, 0.7071067811865476],
                "scale": [2, 2, 2],
            },
            {"matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 5, 0, 0, 1], "mesh": 0},
            {"mesh": 0},
        ],
        "meshes": [
            {
                "primitives": [
                    {"attributes": {"POSITION": 0}, "indices": 1},
                    {"attributes": {"POSITION": 2}, "mode": 4},
                    {"attributes": {"POSITION": 2}, "mode": 1},
                ]
            }
        ],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5123, "count": 6, "type": "SCALAR"},
            {"bufferView": 2, "componentType": 5126, "count": 3, "type": "VEC3"},
        ],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": 96, "byteStride": 24},
            {"buffer": 0, "byteOffset": 96, "byteLength": 12},
            {"buffer": 0, "byteOffset": 108, "byteLength": 36},
        ],
        "buffers": [{"byteLength": len(binary)}],
    }
    document["nodes"][0]["children"] = [1]
    return _glb(document, binary)


def test_a_hand_made_glb_applies_node_transforms_and_turns_y_up_into_z_up(tmp_path):
    path = tmp_path / "hand.glb"
    path.write_bytes(_hand_made_glb())
    mesh = read_mesh(path)
    assert mesh.format == "glb"
    # In glTF's frame: p -> (10, 20, 30) + R_y(90°) (2 (p + (5, 0, 0))), R_y(90°): (x, y, z) -> (z, y, -x);
    # then (x, y, z) -> (x, -z, y).
    gltf = [[10, 20, 20], [10, 20, 18], [10, 22, 18], [10, 22, 20], [12, 20, 20], [14, 20, 20], [14, 22, 20]]
    expected = [[x, -z, y] for x, y, z in gltf]
    np.testing.assert_allclose(mesh.vertices, expected, atol=1e-12)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3], [4, 5, 6]])


def test_a_glb_without_scenes_reads_every_node_that_no_node_holds(tmp_path):
    def without_scenes(document):
        del document["scene"], document["scenes"]

    path = _write(tmp_path, "roots.glb", _changed_glb(without_scenes))
    mesh = read_mesh(path)
    untransformed = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 2], [0, 1, 2]]
    assert len(mesh.vertices) == 14  # node 0's child, then node 2
    np.testing.assert_array_equal(mesh.vertices[7:], [[x, -z, y] for x, y, z in untransformed])
    np.testing.assert_array_equal(mesh.faces[3:], [[7, 8, 9], [7, 9, 10], [11, 12, 13]])


def _coloured(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    return Mesh(vertices.astype(np.float32), faces.astype(np.int32), np.full((len(vertices), 3), 0.5, np.float32))


@pytest.mark.parametrize("suffix", [".ply", ".glb", ".obj"])
def test_what_is_read_is_written_back_by_our_writer_with_the_same_vertices_and_faces(tmp_path, suffix):
    """Painting writes the mesh it read with engine/export's writer: same faces in the same
    order, the same float32 vertices (OBJ's writer keeps six decimals)."""
    source = read_mesh(_polygon_ply(tmp_path / "source.ply", "="))
    write_mesh(_coloured(source.vertices, source.faces), tmp_path / f"painted{suffix}")
    again = read_mesh(tmp_path / f"painted{suffix}")
    np.testing.assert_array_equal(again.faces, source.faces)
    if suffix == ".obj":
        np.testing.assert_allclose(again.vertices, source.vertices.astype(np.float32), rtol=0, atol=5e-7)
    else:
        np.testing.assert_array_equal(again.vertices, source.vertices.astype(np.float32))


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


PLY_HEAD = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
TRIANGLE = "0 0 0\n1 0 0\n0 1 0\n"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("mesh.stl", "solid", r"unknown mesh format '\.stl' \(use \.ply, \.obj, \.glb\)"),
        ("mesh.gltf", "{}", r"a \.gltf keeps its data in other files.*export it as \.glb"),
        ("mesh.ply", "solid x\n", r"not a PLY file \(it does not begin with 'ply'\)"),
        ("mesh.ply", "ply\nformat ascii 1.0\nelement vertex 1\n", "no end_header line"),
        (
            "mesh.ply",
            "ply\nformat ascii 1.0\nelement vertex 3\nproperty quad x\nend_header\n",
            "unknown property type 'quad'",
        ),
        ("mesh.ply", "ply\nformat ascii 1.0\nelement vertex 1\nweird line\nend_header\n", "header line 'weird line'"),
        (
            "mesh.ply",
            PLY_HEAD + "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE,
            "ends before",
        ),
        ("mesh.ply", PLY_HEAD + "end_header\n0 0 0\n1 zero 0\n0 1 0\n", "a word that is not a number"),
        (
            "mesh.ply",
            PLY_HEAD + "element face 0\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE,
            "has no faces: painting needs a surface",
        ),
        ("mesh.ply", PLY_HEAD + "end_header\n" + TRIANGLE, "has no faces: painting needs a surface"),
        (
            "mesh.ply",
            PLY_HEAD + "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE + "3 0 1 3\n",
            r"1 faces refer to vertices the file does not have \(it has 3 vertices\)",
        ),
        (
            "mesh.ply",
            PLY_HEAD + "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE + "3 0 -1 2\n",
            "1 faces refer to vertices",
        ),
        (
            "mesh.ply",
            PLY_HEAD + "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE + "2 0 1\n",
            "face 1 has 2 corners; a face needs three or more",
        ),
        (
            "mesh.ply",
            PLY_HEAD
            + "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 nan\n1 0 0\n0 1 inf\n3 0 1 2\n",
            "2 vertices have a coordinate that is not a finite number",
        ),
        (
            "mesh.ply",
            PLY_HEAD + "element face 30000000\nproperty list uchar int vertex_indices\nend_header\n" + TRIANGLE,
            "30,000,000 faces, more than the limit of 20,000,000",
        ),
        (
            "mesh.ply",
            PLY_HEAD.replace("vertex 3", "vertex 70000000") + "end_header\n",
            "70,000,000 vertices, more than the limit of 60,000,000",
        ),
        ("mesh.obj", "v 0 0 0\nv 1 0 0\nv 0 1\n", "line 3 has a vertex of fewer than three numbers"),
        ("mesh.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "line 4 has a face with fewer than three corners"),
        ("mesh.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", r"line 4 has a face with vertex 0 \(OBJ counts from 1\)"),
        (
            "mesh.obj",
            "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 two 3\n",
            "line 4 has a face with a corner that is not a vertex number",
        ),
        ("mesh.obj", "v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n", "a vertex coordinate is not a number"),
        (
            "mesh.obj",
            "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\nf -4 1 2\n",
            r"2 faces refer to vertices the file does not have \(it has 3 vertices\)",
        ),
        ("mesh.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "has no faces: painting needs a surface"),
        ("mesh.glb", b"PK\x03\x04 not gltf", r"not a binary glTF file \(it does not begin with 'glTF'\)"),
        ("mesh.glb", struct.pack("<III", 0x46546C67, 1, 12), "a glTF 1 file; only glTF 2.0 can be read"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(tmp_path, name, content, message):
    with pytest.raises(MeshFileError, match=message) as caught:
        read_mesh(_write(tmp_path, name, content))
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(tmp_path / name))


def _changed_glb(change) -> bytes:
    glb = _hand_made_glb()
    length = struct.unpack_from("<I", glb, 12)[0]
    document = json.loads(glb[20 : 20 + length])
    binary = glb[20 + length + 8 :]
    change(document)
    return _glb(document, binary)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["accessors"][0].update(sparse={"count": 1}), "sparse accessor"),
        (lambda d: d["buffers"][0].update(uri="mesh.bin"), "data is in a separate file"),
        (
            lambda d: d.update(extensionsUsed=["KHR_draco_mesh_compression"]),
            r"compressed \(KHR_draco_mesh_compression\)",
        ),
        (lambda d: d["accessors"][1].update(count=600), "runs past the end of its data"),
        (lambda d: d["accessors"][1].update(count=5), "not whole triangles"),
        (lambda d: d["accessors"][0].update(componentType=5123), "not three floats"),
        (lambda d: d["nodes"][1].update(children=[0]), "held by two parents or by itself"),
        (lambda d: d["meshes"][0]["primitives"].__delitem__(slice(0, 2)), "has no faces: painting needs a surface"),
        (lambda d: d["accessors"][2].update(count=70_000_000), "70,000,004 vertices, more than the limit"),
        (lambda d: d.pop("meshes"), r"its JSON does not describe glTF 2\.0 \(KeyError\('meshes'\)\)"),
    ],
)
def test_glb_problems_are_refused_in_one_sentence(tmp_path, change, message):
    with pytest.raises(MeshFileError, match=message):
        read_mesh(_write(tmp_path, "mesh.glb", _changed_glb(change)))


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(MeshFileError, match="file not found"):
        read_mesh(tmp_path / "nowhere.ply")
