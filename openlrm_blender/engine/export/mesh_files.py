"""Writing meshes as PLY (binary, uchar vertex colours), OBJ (colours after x y z; with UVs,
an .mtl and the texture as .png beside it when textured) or binary glTF (``gltf``).

Each file is written to a temporary file beside its destination and renamed over it only
when complete, so a failed write (disk full, say) never leaves a broken file or destroys
the one that was there.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EngineError
from ..result import Mesh
from .gltf import glb_bytes

FORMATS = (".ply", ".obj", ".glb")
_UMASK = os.umask(0o022)  # read once (it can only be read by setting it) ...
os.umask(_UMASK)  # ... and put back


def write_ply(mesh: Mesh, path: Path) -> None:
    """Binary little-endian PLY in the engine's frame (+Z up), unrotated; coordinates in double
    precision where the mesh has them (a painted mesh read from doubles stays as it was)."""
    coordinate, word = ("<f8", "double") if mesh.vertices.dtype == np.float64 else ("<f4", "float")
    vertices = np.empty(
        len(mesh.vertices),
        dtype=[("x", coordinate), ("y", coordinate), ("z", coordinate), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    for axis, name in enumerate("xyz"):
        vertices[name] = mesh.vertices[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = mesh.colours_u8[:, channel]
    faces = np.empty(len(mesh.faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    faces["count"] = 3
    faces["indices"] = mesh.faces
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment made by OpenLRM for Blender\n"
        f"element vertex {len(vertices)}\n"
        f"property {word} x\nproperty {word} y\nproperty {word} z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    with open(path, "wb") as file:
        file.write(header.encode("ascii"))
        file.write(vertices.tobytes())
        file.write(faces.tobytes())


def write_obj(mesh: Mesh, path: Path, material_library: str = "") -> None:
    """OBJ with per-vertex colours as the widely read "v x y z r g b" extension; textured,
    with "vt" UVs and the material in ``material_library`` (an .mtl beside it)."""
    with open(path, "w", encoding="ascii") as file:
        file.write("# made by OpenLRM for Blender\n")
        if mesh.textured:
            file.write(f"mtllib {material_library}\nusemtl baked\n")
        digits = "%.17g" if mesh.vertices.dtype == np.float64 else "%.6f"  # doubles as they were read
        np.savetxt(
            file,
            np.hstack([mesh.vertices, mesh.colours_u8 / 255.0]),
            fmt=f"v {digits} {digits} {digits} %.4f %.4f %.4f",
        )
        if mesh.textured:
            np.savetxt(file, mesh.uvs, fmt="vt %.6f %.6f")
            np.savetxt(file, np.repeat(mesh.faces + 1, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
        else:
            np.savetxt(file, mesh.faces + 1, fmt="f %d %d %d")


def check_writable(folders: list[Path]) -> None:
    """Each folder exists (made if need be) and takes a new file: checked before computing."""
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except FileExistsError:
            raise EngineError(f"{folder}: cannot write there: a file is in the way of this folder") from None
        except OSError as exc:
            raise EngineError(f"{folder}: cannot write there ({exc.strerror or exc})") from None


def _temporary_name(path: Path) -> tuple[str, str]:
    """The prefix and suffix of the temporary file that becomes ``path``."""
    return f".{path.name}.", ".part"


def temporaries_of(output: Path) -> list[Path]:
    """Temporary files that a write of ``output`` (and of its .mtl and .png) cut short left."""
    found = []
    for path in {output, output.with_suffix(".mtl"), output.with_suffix(".png")}:
        prefix, suffix = _temporary_name(path)
        found += [p for p in path.parent.glob(f"{glob.escape(prefix)}*{suffix}") if p.is_file()]
    return sorted(found)


def _replace(path: Path, write) -> None:
    """``write(temporary)``, then the temporary file renamed over ``path``."""
    prefix, suffix = _temporary_name(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(descriptor)
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # a plain new file's permissions, not mkstemp's private ones
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException as exc:  # Ctrl+C mid-write too: no half file left behind
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise EngineError(f"{path}: cannot write the mesh ({exc.strerror or exc}); nothing was replaced") from None
        raise


def write_mesh(mesh: Mesh, path: Path) -> None:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown mesh format {path.suffix!r} (use {', '.join(FORMATS)})")
    if suffix == ".glb":
        _replace(path, lambda temporary: temporary.write_bytes(glb_bytes(mesh, path.stem)))
    elif suffix == ".obj" and mesh.textured:  # its material and texture first, so the OBJ finds them
        from PIL import Image

        _replace(
            path.with_suffix(".png"), lambda temporary: Image.fromarray(mesh.texture, "RGB").save(temporary, "PNG")
        )
        material = f"newmtl baked\nKd 1 1 1\nmap_Kd {path.with_suffix('.png').name}\n"
        _replace(path.with_suffix(".mtl"), lambda temporary: temporary.write_text(material, encoding="utf-8"))
        _replace(path, lambda temporary: write_obj(mesh, temporary, path.with_suffix(".mtl").name))
    elif suffix == ".obj":
        _replace(path, lambda temporary: write_obj(mesh, temporary))
    else:
        _replace(path, lambda temporary: write_ply(mesh, temporary))
