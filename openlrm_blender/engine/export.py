"""Writing meshes as PLY (binary, uchar vertex colours) or OBJ (colours after x y z)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .result import Mesh

FORMATS = (".ply", ".obj")


def write_ply(mesh: Mesh, path: Path) -> None:
    """Binary little-endian PLY in the engine's frame (+Z up), unrotated."""
    vertices = np.empty(
        len(mesh.vertices),
        dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    for axis, name in enumerate("xyz"):
        vertices[name] = mesh.vertices[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = mesh.colors_u8[:, channel]
    faces = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    faces["count"] = 3
    faces["indices"] = mesh.faces
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment made by OpenLRM for Blender\n"
        f"element vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as file:
        file.write(header.encode("ascii"))
        file.write(vertices.tobytes())
        file.write(faces.tobytes())


def write_obj(mesh: Mesh, path: Path) -> None:
    """OBJ with per-vertex colours as the widely read "v x y z r g b" extension."""
    with open(path, "w", encoding="ascii") as file:
        file.write("# made by OpenLRM for Blender\n")
        np.savetxt(file, np.hstack([mesh.vertices, mesh.colors_u8 / 255.0]), fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
        np.savetxt(file, mesh.faces + 1, fmt="f %d %d %d")


def write_mesh(mesh: Mesh, path: Path) -> None:
    suffix = Path(path).suffix.lower()
    if suffix == ".ply":
        write_ply(mesh, path)
    elif suffix == ".obj":
        write_obj(mesh, path)
    else:
        raise ValueError(f"{path}: unknown mesh format {suffix!r} (use {' or '.join(FORMATS)})")
