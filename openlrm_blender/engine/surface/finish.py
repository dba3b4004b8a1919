"""The surface after meshing, as a run asks for it: floaters dropped, smoothing,
simplification to a face budget, then vertex colours or a texture baked on new UVs, each
with the photo where the colouring lays it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..geometry.normals import own_and_neighbourhood_normals, vertex_normals
from ..progress import Reporter, Stopwatch
from ..result import Mesh
from .bake import bake_texture
from .cleanup import remove_small_pieces, taubin_smooth
from .simplify import simplify
from .uv import unwrap

if TYPE_CHECKING:  # no PyTorch in Blender's process, which reads ``Finish`` through the options
    from .colouring import Colouring


@dataclass(frozen=True)
class Finish:
    """What a run asks of the surface (``Options.finish``); 0 / False: that step is off."""

    min_piece: float = 0.0  # drop disconnected pieces with less than this share of the faces
    smooth_iterations: int = 0  # Taubin smoothing
    faces: int = 0  # simplify to about this many faces
    textured: bool = False  # UV-unwrap and bake a square colour texture ...
    texture_size: int = 1024  # ... of this many pixels

    @property
    def any(self) -> bool:
        return bool(self.min_piece or self.smooth_iterations or self.faces or self.textured)


def finish_surface(
    mesh: Mesh, options: Finish, colouring: Colouring, report: Reporter, timings: dict[str, float]
) -> Mesh:
    """Clean-up, simplification, then either a baked texture on UVs or the vertices
    coloured again (simplifying moves them), with the photo where asked: what ``options``
    asks for."""
    stopwatch = Stopwatch(timings)
    report("surface", 0.0, "removing small pieces")
    vertices, faces, kept = remove_small_pieces(mesh.vertices, mesh.faces, options.min_piece)
    vertices = taubin_smooth(vertices, faces, options.smooth_iterations)
    stopwatch.lap("cleanup")
    report("surface", 0.1, f"simplifying {len(faces):,} faces to {options.faces:,}" if options.faces else "")
    simplified = simplify(vertices, faces, options.faces)
    moved = simplified[0] is not vertices
    vertices, faces = simplified
    stopwatch.lap("simplify")

    # Vertices that moved are coloured anew; a textured mesh keeps them too (a PLY, the viewport).
    moved_or_smoothed = moved or options.smooth_iterations
    colours = colouring.base(vertices, report.span("surface", 0.2, 0.3)) if moved_or_smoothed else mesh.colours[kept]
    if not options.textured:
        finished = Mesh(vertices=vertices, faces=faces, colours=colours, rounding=mesh.rounding)
        if colouring.photo is not None:
            report("surface", 0.3, "the photo on the front")
            finished.colours = colouring.vertex_colours(finished, colours)
            stopwatch.lap("photo")
        return finished
    report("surface", 0.3, "unwrapping UVs")
    unwrapped = unwrap(vertices, faces, options.texture_size)
    stopwatch.lap("unwrap")
    # Normals of the surface before it was cut into charts: a chart's border faces the way
    # the surface there does (the photo's judgement), and the seams never show in light.
    normals = own_and_neighbourhood_normals(vertices, faces)[unwrapped.source]
    texture = _baked(unwrapped.vertices, unwrapped.faces, unwrapped.uvs, normals, options.texture_size, colouring,
                     mesh.rounding, report, timings)  # fmt: skip
    colours = colours[unwrapped.source]  # the vertices split along the charts' seams are copies
    return Mesh(
        unwrapped.vertices,
        unwrapped.faces,
        colours,
        uvs=unwrapped.uvs,
        texture=texture,
        rounding=mesh.rounding,
        normals=vertex_normals(vertices, faces)[unwrapped.source],
    )


def bake_on_uvs(
    mesh: Mesh, corner_uvs: np.ndarray, size: int, colouring: Colouring, report: Reporter, timings: dict[str, float]
) -> Mesh:
    """A painted mesh's texture baked onto its own UVs ((F, 3, 2), per face corner): the mesh
    comes back as it was, with the texture for those UVs (``uvs`` stays None: they are the
    caller's)."""
    corners = np.stack([mesh.faces.reshape(-1), *np.round(corner_uvs.reshape(-1, 2) * 2**20).T.astype(np.int64)], 1)
    unique, corner_vertex = np.unique(corners, axis=0, return_inverse=True)
    source = unique[:, 0]
    uvs = np.zeros((len(unique), 2), dtype=np.float32)
    uvs[corner_vertex.reshape(-1)] = corner_uvs.reshape(-1, 2)
    faces = corner_vertex.reshape(-1, 3).astype(np.int32)
    normals = own_and_neighbourhood_normals(mesh.vertices, mesh.faces)[source]
    texture = _baked(mesh.vertices[source], faces, uvs, normals, size, colouring, mesh.rounding, report, timings)
    return Mesh(mesh.vertices, mesh.faces, mesh.colours, texture=texture, rounding=mesh.rounding)


def _baked(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    normals: np.ndarray,
    size: int,
    colouring: Colouring,
    rounding: str,
    report: Reporter,
    timings: dict[str, float],
) -> np.ndarray:
    """The texture of a mesh cut along its charts' seams: each texel the colouring's colour at
    its surface point, the photo on it where the colouring lays one ("bake" and "photo" in
    ``timings``)."""
    stopwatch = Stopwatch(timings)
    report("surface", 0.5, f"baking a {size} px texture")
    photo_seconds = Stopwatch({})

    def texel_colours(points: np.ndarray, texel_normals: np.ndarray) -> np.ndarray:
        base = colouring.base(points, report.span("surface", 0.5, 0.9))
        if colouring.photo is None:
            return base
        report("surface", 0.9, "the photo on the front")
        photo_seconds.lap("start")
        colours = colouring.photographed(vertices, faces, points, texel_normals, base)
        photo_seconds.lap("photo")
        return colours

    texture = bake_texture(vertices, faces, uvs, normals, size, texel_colours, rounding=rounding)
    stopwatch.lap("bake")
    report("surface", 1.0, f"a {size} px texture baked")
    if "photo" in photo_seconds.laps:  # the photo's share of the bake, told apart
        timings["photo"] = photo_seconds.laps["photo"]
        timings["bake"] -= timings["photo"]
    return texture
