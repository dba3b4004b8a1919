"""Quads by Blender's own remeshers, run in a Blender process of its own (``jobs.quads``
starts it with ``remesh_command.command()`` and a folder; ``main`` is that process): a voxel remesh makes
the surface closed and manifold, QuadriFlow lays quads over it at the budget, and the
colours, or a new texture on a new UV layout, are carried over from the triangle mesh
(each point takes the colour of the triangle mesh's nearest point).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import bpy  # first: Blender as a Python module puts its own modules (bmesh) on the path

import bmesh
import numpy as np
from mathutils import Matrix
from mathutils.bvhtree import BVHTree

from ..engine.geometry.normals import vertex_normals
from ..engine.result import Mesh
from ..engine.surface.bake import bake_texture
from ..engine.surface.transfer import colours_at
from ..jobs.quads import PROGRESS, QUADS, REFUSED, SOURCE, PolygonMesh, QuadsFailed

# The voxel mesh has this many faces per quad asked for: QuadriFlow's time grows with the
# budget (10 s for 10,000 quads here) more than with its input, and two voxel faces per
# quad keep the shape's detail at the budget's scale.
VOXEL_FACES_PER_QUAD = 2.0
MARK = "openlrm_voxel_mesh"  # a face attribute of the voxel mesh: QuadriFlow's output has none
MERGE_DISTANCE = 1e-3  # voxels: ten times QuadriFlow's shortest edge at a voxel's length of 1
BUDGET_SLACK = 0.2  # QuadriFlow's count further than this share from the budget is asked again,
QUADRIFLOW_TRIES = 4  # in all at most this many times (the closest count is kept)
ISLAND_MARGIN_TEXELS = 4  # between the new UV layout's islands, as the engine's own layout
NEAREST_CHUNK = 65_536  # points per progress report while finding the nearest points

Report = Callable[[float, str], None]


def main() -> None:
    """The remesh process: the source in the folder named last on the command line, the
    quads (or the reason there are none) written beside it."""
    folder = Path(sys.argv[-1])
    with np.load(folder / SOURCE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    budget, texture_size = int(arrays.pop("budget")), int(arrays.pop("texture_size"))
    # The colours as the triangle object shows them: 8-bit, kept exactly by rounding.
    source = Mesh(colours=arrays.pop("colours") / np.float32(255.0), rounding="round", **arrays)
    try:
        quads = remeshed(source, budget, texture_size, report)
    except QuadsFailed as refusal:
        (folder / REFUSED).write_text(str(refusal), encoding="utf-8")
        return
    np.savez(folder / QUADS, **quads.arrays())


def report(fraction: float, message: str) -> None:
    print(f"{PROGRESS} {fraction:.3f} {message}", flush=True)


def remeshed(source: Mesh, budget: int, texture_size: int, report: Report) -> PolygonMesh:
    """``source`` as about ``budget`` quads with its colours; textured (``texture_size`` > 0
    and a textured source), with a new UV layout and texture."""
    obj = linked_object(source.vertices, source.faces)
    quad_surface(obj, source, budget, report)
    data = obj.data
    vertices = np.empty(len(data.vertices) * 3, dtype=np.float32)
    data.vertices.foreach_get("co", vertices)
    vertices = vertices.reshape(-1, 3)
    sizes = np.empty(len(data.polygons), dtype=np.int32)
    data.polygons.foreach_get("loop_total", sizes)
    corners = np.empty(len(data.loops), dtype=np.int32)
    data.loops.foreach_get("vertex_index", corners)
    report(0.6, f"{int((sizes == 4).sum()):,} quads: carrying the colours over")
    tree = BVHTree.FromPolygons(source.vertices.tolist(), source.faces.tolist())
    colours = colour_bytes(colours_at(source, *nearest(tree, vertices, None)))
    quads = PolygonMesh(vertices, sizes, corners, colours)
    if source.textured and texture_size:
        report(0.65, "a new UV layout")
        quads.uvs = uv_layout(obj, texture_size)
        quads.texture = baked(quads, source, tree, texture_size, report)
    report(1.0, f"{len(sizes):,} faces")
    return quads


def linked_object(vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Object:
    """A triangle mesh object in the scene, selected and active (for the remesh operators)."""
    data = bpy.data.meshes.new("triangles")
    data.vertices.add(len(vertices))
    data.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    data.loops.add(faces.size)
    data.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    data.polygons.add(len(faces))
    data.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    data.update(calc_edges=True)
    obj = bpy.data.objects.new("triangles", data)
    bpy.context.scene.collection.objects.link(obj)
    for other in bpy.context.view_layer.objects:
        other.select_set(other is obj)
    bpy.context.view_layer.objects.active = obj
    return obj


def quad_surface(obj: bpy.types.Object, source: Mesh, budget: int, report: Report) -> None:
    """The object's mesh replaced by quads: voxel remesh, then QuadriFlow. Both run in voxel
    units (the mesh scaled so a voxel is 1 long, and back after): QuadriFlow refuses any mesh
    with an edge under 1e-4 long in every axis, a length fixed in scene units, which a fine
    voxel mesh of a small object has; the rare shorter edge of the voxel mesh is merged away."""
    corners = source.vertices[source.faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum()
    if not area > 0:
        raise QuadsFailed("the mesh has no area to remesh")
    voxel = math.sqrt(area / (VOXEL_FACES_PER_QUAD * budget))
    obj.data.transform(Matrix.Scale(1.0 / voxel, 4))
    obj.data.remesh_voxel_size = 1.0
    report(0.02, f"voxel remesh ({voxel:.4g} per voxel)")
    bpy.ops.object.voxel_remesh()
    if not obj.data.polygons:
        raise QuadsFailed("the voxel remesh left nothing: the shape is thinner than its voxels everywhere")
    merge_short_edges(obj.data)
    quads_at_budget(obj, budget, report)
    obj.data.transform(Matrix.Scale(voxel, 4))


def quads_at_budget(obj: bpy.types.Object, budget: int, report: Report) -> None:
    """QuadriFlow over the object's voxel mesh. On a mesh of many pieces or thin parts it
    misjudges the count (the tiny test model's 386 pieces: 983 quads for 2,000 in Blender
    4.2, 708 in 4.3), so a count off the budget is asked again, scaled, and the closest kept."""
    voxels = obj.data.copy()  # QuadriFlow rewrites the mesh in place: the voxels again, for another try
    report(0.1, f"QuadriFlow: {budget:,} quads from {len(obj.data.polygons):,} voxel faces")
    if not quadriflow(obj, budget):
        raise QuadsFailed(
            "QuadriFlow could not lay quads over this shape (its voxel remesh is not a closed surface QuadriFlow "
            "accepts: parts thinner than a voxel, as a flat card, do this)"
        )
    best, target = obj.data, budget
    for attempt in range(1, QUADRIFLOW_TRIES):
        made = len(obj.data.polygons)
        if abs(made - budget) <= BUDGET_SLACK * budget:
            break
        target = max(round(target * budget / made), 1)
        report(0.1 + 0.5 * attempt / QUADRIFLOW_TRIES, f"QuadriFlow made {made:,} quads: again, asking for {target:,}")
        obj.data = voxels.copy()
        if not quadriflow(obj, target):
            break
        if abs(len(obj.data.polygons) - budget) < abs(len(best.polygons) - budget):
            best = obj.data
    obj.data = best


def merge_short_edges(data: bpy.types.Mesh) -> None:
    """Vertices of the voxel mesh closer than ``MERGE_DISTANCE`` voxels made one."""
    mesh = bmesh.new()
    mesh.from_mesh(data)
    bmesh.ops.remove_doubles(mesh, verts=mesh.verts, dist=MERGE_DISTANCE)
    mesh.to_mesh(data)
    mesh.free()


def quadriflow(obj: bpy.types.Object, target: int) -> bool:
    """QuadriFlow at ``target`` quads; False where it declined (with only a warning)."""
    obj.data.attributes.new(MARK, "INT", "FACE")
    bpy.ops.object.quadriflow_remesh(mode="FACES", target_faces=target, use_mesh_symmetry=False, seed=0)
    return MARK not in obj.data.attributes


def nearest(tree: BVHTree, points: np.ndarray, report: Report | None) -> tuple[np.ndarray, np.ndarray]:
    """The source's triangle nearest to each point and the nearest point on it."""
    triangles = np.empty(len(points), dtype=np.int64)
    located = np.empty((len(points), 3), dtype=np.float64)
    for start in range(0, len(points), NEAREST_CHUNK):
        for index, point in enumerate(points[start : start + NEAREST_CHUNK].tolist(), start):
            location, _, triangles[index], _ = tree.find_nearest(point)
            located[index] = location
        if report is not None:
            report(min(start + NEAREST_CHUNK, len(points)) / len(points), f"{len(points):,} texels")
    return triangles, located


def colour_bytes(colours: np.ndarray) -> np.ndarray:
    return np.clip(np.round(colours * 255.0), 0, 255).astype(np.uint8)


def uv_layout(obj: bpy.types.Object, texture_size: int) -> np.ndarray:
    """Blender's Smart UV Project on the quads (it keeps each quad whole in one island):
    per corner (corners, 2)."""
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.uv.smart_project(
        angle_limit=math.radians(66.0), margin_method="FRACTION", island_margin=ISLAND_MARGIN_TEXELS / texture_size
    )  # fmt: skip
    bpy.ops.object.mode_set(mode="OBJECT")
    uvs = np.empty(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers.active.data.foreach_get("uv", uvs)
    return uvs.reshape(-1, 2)


def baked(quads: PolygonMesh, source: Mesh, tree: BVHTree, texture_size: int, report: Report) -> np.ndarray:
    """The quads' texture: each texel the source's colour at the point nearest to the
    texel's point on the quads (the source's texture there, filtered as a viewer would)."""
    triangles = quads.triangles()
    normals = vertex_normals(quads.vertices, quads.corners[triangles])

    def colour_at(points: np.ndarray, _normals: np.ndarray) -> np.ndarray:
        step = lambda fraction, message: report(0.7 + 0.3 * fraction, message)  # noqa: E731
        return colours_at(source, *nearest(tree, points, step))

    return bake_texture(
        quads.vertices[quads.corners], triangles, quads.uvs, normals[quads.corners], texture_size, colour_at,
        rounding="round",
    )  # fmt: skip
