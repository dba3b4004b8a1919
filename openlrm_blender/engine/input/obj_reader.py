"""OBJ files read as vertex positions and polygons: the ``v`` lines (their first three numbers)
and the ``f`` lines (each corner's vertex from ``a``, ``a/b``, ``a/b/c`` or ``a//c``; a negative
number counts back from the latest vertex); every other line is ignored."""

from __future__ import annotations

from array import array

import numpy as np

from ..errors import MeshFileError
from .mesh_size import check_size


def read_obj(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64; the polygons as their corner counts and all their corners in a
    row, counted from 0."""
    coordinates: list[str] = []
    counts, corners = array("q"), array("q")
    for number, line in enumerate(data.decode("latin-1").splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if words[0] == "v":
            if len(words) < 4:
                raise MeshFileError(f"{name}: not a valid OBJ: line {number} has a vertex of fewer than three numbers")
            coordinates += words[1:4]
        elif words[0] == "f":
            problem = ""
            try:
                face = [int(word.partition("/")[0]) for word in words[1:]]
            except ValueError:
                problem = "a corner that is not a vertex number"
            else:
                if len(face) < 3:
                    problem = "fewer than three corners"
                elif 0 in face:
                    problem = "vertex 0 (OBJ counts from 1)"
            if problem:
                raise MeshFileError(f"{name}: not a valid OBJ: line {number} has a face with {problem}")
            defined = len(coordinates) // 3  # the vertices before this line, which negative numbers count back from
            corners.extend(index - 1 if index > 0 else defined + index for index in face)
            counts.append(len(face))
    check_size(name, vertices=len(coordinates) // 3)
    try:
        vertices = np.array(coordinates, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise MeshFileError(f"{name}: not a valid OBJ: a vertex coordinate is not a number") from None
    return vertices, np.frombuffer(counts, np.int64), np.frombuffer(corners, np.int64)
