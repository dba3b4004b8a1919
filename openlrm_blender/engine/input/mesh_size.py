"""How large a mesh to paint may be, checked as soon as a file declares its size.

Painting holds a mesh several times over: the file's bytes, the faces as 64-bit integers, the
vertices in double precision, the voxelisation's candidates and the colours written back. At
20 million triangles that is about 2 GB, on top of the model; detailed scans and sculpts stay
well under it, and larger meshes gain nothing from the 64³ grid the colours come from. A
triangle soup has three vertices per triangle, so the vertex limit is three times as large.
"""

from __future__ import annotations

from ..errors import MeshFileError

MAX_TRIANGLES = 20_000_000
MAX_VERTICES = 3 * MAX_TRIANGLES


def check_size(name: str, vertices: int = 0, triangles: int = 0) -> None:
    """Refuses a mesh (or what its file declares) over the limits, before it is read."""
    for count, limit, what in ((triangles, MAX_TRIANGLES, "faces"), (vertices, MAX_VERTICES, "vertices")):
        if count > limit:
            raise MeshFileError(
                f"{name}: the mesh has {count:,} {what}, more than the limit of {limit:,} (painting it would take "
                "several GB of memory); decimate it first (Blender's Decimate modifier)"
            )
