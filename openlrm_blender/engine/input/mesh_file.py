"""A user's mesh to paint, read from PLY, OBJ or binary glTF: the input of the painting path,
as a photo is of the others.

Vertices and faces keep the file's order exactly (a polygon of more corners becomes a fan of
triangles from its first corner, in order), because painting writes the same mesh back with
colours. Whatever cannot be painted is refused in one sentence: a missing or unknown file, a file
that is not what its name says, no faces, faces that name missing vertices, coordinates that are
not finite, a mesh over the size limit (mesh_size.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MeshFileError
from .glb_reader import read_glb
from .mesh_size import check_size
from .obj_reader import read_obj
from .ply_reader import read_ply

FORMATS = (".ply", ".obj", ".glb")


@dataclass(frozen=True)
class MeshFile:
    vertices: np.ndarray  # (V, 3): float32 where the file stores float32 (binary PLY), else float64; +Z up
    faces: np.ndarray  # int64 (F, 3), in the file's order
    format: str  # "ply", "obj" or "glb"


@dataclass
class PaintMesh:
    """A mesh to paint: vertices and faces as given (their order is kept), and where it has
    them, UVs per face corner (F, 3, 2) to bake a texture onto. Here, free of PyTorch, so that
    Blender's process can build one for the model's."""

    vertices: np.ndarray
    faces: np.ndarray
    corner_uvs: np.ndarray | None = None


def read_mesh(path: str | Path) -> MeshFile:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gltf":
        raise MeshFileError(f"{path}: a .gltf keeps its data in other files, which cannot be read; export it as .glb")
    if suffix not in FORMATS:
        raise MeshFileError(f"{path}: unknown mesh format {path.suffix!r} (use {', '.join(FORMATS)})")
    if not path.is_file():
        raise MeshFileError(f"{path}: file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeshFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if suffix == ".glb":
        vertices, faces = read_glb(data, str(path))
    else:
        vertices, counts, corners = (read_ply if suffix == ".ply" else read_obj)(data, str(path))
        faces = _fan(counts, corners, str(path))
    check_mesh(vertices, faces, str(path))
    return MeshFile(vertices, faces, suffix[1:])


def _fan(counts: np.ndarray, corners: np.ndarray, name: str) -> np.ndarray:
    """Polygons (their corner counts, their corners in a row) as triangles: each polygon's
    first corner with its next two, then with the two after, and so on."""
    if (counts < 3).any():
        polygon = int(np.argmax(counts < 3))
        raise MeshFileError(f"{name}: face {polygon + 1} has {counts[polygon]} corners; a face needs three or more")
    check_size(name, triangles=int((counts - 2).sum()))
    if (counts == 3).all():
        return corners.reshape(-1, 3)
    first = np.cumsum(counts) - counts  # where each polygon's corners begin
    triangles = counts - 2
    polygon = np.repeat(np.arange(len(counts)), triangles)
    step = np.arange(len(polygon)) - np.repeat(np.cumsum(triangles) - triangles, triangles)
    base = first[polygon]
    return np.stack([corners[base], corners[base + step + 1], corners[base + step + 2]], axis=1)


def check_mesh(vertices: np.ndarray, faces: np.ndarray, name: str) -> None:
    """Refuses, in words, a mesh that cannot be painted (``name``: its file, or its object)."""
    if len(faces) == 0:
        raise MeshFileError(f"{name}: the mesh has no faces: painting needs a surface")
    check_size(name, vertices=len(vertices), triangles=len(faces))
    missing = int(((faces < 0) | (faces >= len(vertices))).any(axis=1).sum())
    if missing:
        raise MeshFileError(
            f"{name}: {missing:,} faces refer to vertices the file does not have (it has {len(vertices):,} vertices)"
        )
    broken = int((~np.isfinite(vertices)).any(axis=1).sum())
    if broken:
        raise MeshFileError(
            f"{name}: {broken:,} vertices have a coordinate that is not a finite number (NaN or infinity)"
        )
