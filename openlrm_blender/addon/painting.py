"""Mesh objects to paint, read for the model, and their paint written back: a point colour
attribute, or a texture baked onto the object's UVs (Blender's Smart UV Project makes them
where there are none), shown by the object's material.

The model sees a mesh in its own frame, +Z up as Blender's, and centres and scales it
itself: an object is sent with its world rotation and scale (so a rotated object is painted
upright, as it stands in the scene) but not its translation (which would only cost float32
precision far from the origin). Its vertices are where the scene shows them (shape keys and
deforming modifiers applied) when the evaluated mesh has the same vertices, else the mesh's
own. Nothing is written until every object's paint is back, so a failed or cancelled run
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy

import numpy as np

from ..engine import EngineError, Mesh
from ..engine.input.mesh_file import PaintMesh, check_mesh
from ..engine.input.mesh_size import check_size
from . import importer

PAINT_NODE = "OpenLRM Paint"  # the node that shows the paint in a material, replaced by the next paint
PAINT_UV_NODE = "OpenLRM Paint UV"
UV_MARGIN = 0.01  # between Smart UV Project's islands, so a texture's charts do not bleed into each other


@dataclass
class PaintTarget:
    """One object to paint: what the model gets, and the UVs to add with the paint where the
    object had none (per face corner of the mesh, in its own loop order)."""

    name: str  # the object's, to find it again when the paint comes back
    mesh: PaintMesh
    loops: int  # the mesh's face corners, to tell whether it changed meanwhile
    new_uvs: np.ndarray | None = None


def objects_to_paint(context: bpy.types.Context) -> list[bpy.types.Object]:
    """The selected mesh objects and the active one, the active first, each mesh once (two
    objects sharing a mesh share its paint)."""
    active = context.view_layer.objects.active
    chosen = [active] if active is not None and active.type == "MESH" else []
    chosen += [obj for obj in context.selected_objects if obj.type == "MESH" and obj is not active]
    meshes, objects = set(), []
    for obj in chosen:
        if obj.data.as_pointer() not in meshes:
            meshes.add(obj.data.as_pointer())
            objects.append(obj)
    return objects


def paint_target(context: bpy.types.Context, obj: bpy.types.Object, textured: bool) -> PaintTarget:
    """The object's mesh for the model, refused in the engine's words where it cannot be
    painted (no faces, too large); with ``textured``, its active UV map per triangle corner,
    made by Smart UV Project (on a copy: the object is untouched) where it has none."""
    data = obj.data
    sizes = np.empty(len(data.polygons), dtype=np.int32)
    data.polygons.foreach_get("loop_total", sizes)
    check_size(obj.name, vertices=len(data.vertices), triangles=int((sizes - 2).sum()))
    data.calc_loop_triangles()
    faces = np.empty(len(data.loop_triangles) * 3, dtype=np.int32)
    data.loop_triangles.foreach_get("vertices", faces)
    vertices = _world_oriented(obj, _shown_positions(context, obj))
    check_mesh(vertices, faces.reshape(-1, 3), obj.name)
    target = PaintTarget(obj.name, PaintMesh(vertices, faces.reshape(-1, 3)), len(data.loops))
    if textured:
        if data.uv_layers.active is not None:
            uvs = np.empty(len(data.loops) * 2, dtype=np.float32)
            data.uv_layers.active.data.foreach_get("uv", uvs)
            uvs = uvs.reshape(-1, 2)
        else:
            uvs = target.new_uvs = _smart_uvs(context, obj)
        corners = np.empty(len(data.loop_triangles) * 3, dtype=np.int32)
        data.loop_triangles.foreach_get("loops", corners)
        target.mesh.corner_uvs = uvs[corners].reshape(-1, 3, 2)
    return target


def _shown_positions(context: bpy.types.Context, obj: bpy.types.Object) -> np.ndarray:
    """The vertices where the scene shows them, when the evaluated mesh keeps the vertices
    (shape keys, deforming modifiers); else (modifiers that add or remove some) the mesh's own."""
    evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
    shown = evaluated.to_mesh()
    try:
        source = shown if len(shown.vertices) == len(obj.data.vertices) else obj.data
        positions = np.empty(len(source.vertices) * 3, dtype=np.float32)
        source.vertices.foreach_get("co", positions)
    finally:
        evaluated.to_mesh_clear()
    return positions.reshape(-1, 3)


def _world_oriented(obj: bpy.types.Object, positions: np.ndarray) -> np.ndarray:
    """The positions turned and scaled as the object stands in the world, not moved."""
    matrix = np.array(obj.matrix_world, dtype=np.float64)[:3, :3]
    if np.array_equal(matrix, np.eye(3)):
        return positions
    return (positions.astype(np.float64) @ matrix.T).astype(np.float32)


def _smart_uvs(context: bpy.types.Context, obj: bpy.types.Object) -> np.ndarray:
    """Smart UV Project's UVs for the object's mesh (L, 2), made on a copy alone in Edit Mode
    (the selection is put back): the object itself gets them with its paint."""
    view_layer = context.view_layer
    selected, active = [o for o in view_layer.objects if o.select_get()], view_layer.objects.active
    data = obj.data.copy()
    copy = bpy.data.objects.new(f"{obj.name} UVs", data)
    copy.matrix_world = obj.matrix_world
    context.scene.collection.objects.link(copy)
    try:
        for other in selected:
            other.select_set(False)
        copy.select_set(True)
        view_layer.objects.active = copy
        with context.temp_override(active_object=copy, object=copy, selected_objects=[copy]):
            bpy.ops.object.mode_set(mode="EDIT")
            bpy.ops.mesh.select_all(action="SELECT")
            bpy.ops.uv.smart_project(island_margin=UV_MARGIN)
            bpy.ops.object.mode_set(mode="OBJECT")
        uvs = np.empty(len(data.loops) * 2, dtype=np.float32)
        data.uv_layers.active.data.foreach_get("uv", uvs)
    finally:
        bpy.data.objects.remove(copy)
        bpy.data.meshes.remove(data)
        for other in selected:
            other.select_set(True)
        view_layer.objects.active = active
    return uvs.reshape(-1, 2)


def changed(target: PaintTarget) -> str:
    """Why the object can no longer take its paint ("" where it can): gone, edited or in Edit Mode."""
    obj = bpy.data.objects.get(target.name)
    if obj is None or obj.type != "MESH":
        return f"{target.name} is gone"
    if obj.mode == "EDIT":
        return f"{target.name} is in Edit Mode"
    if len(obj.data.vertices) != len(target.mesh.vertices) or len(obj.data.loops) != target.loops:
        return f"{target.name} was edited during the run"
    return ""


def apply_paint(target: PaintTarget, painted: Mesh) -> list[str]:
    """The paint onto the object: the colour attribute, and where the paint has one, its
    texture on the active UV map (new UVs first where it had none); shown by a material of its
    own where it has none, or through its own where that is this mesh's alone and its base
    colour is a plain value (or an earlier paint). The names of materials left as they were."""
    obj = bpy.data.objects[target.name]
    data = obj.data
    importer.set_colours(data, painted.colours_u8)
    if painted.texture is None:
        return _show(obj, "ShaderNodeVertexColor", lambda node: setattr(node, "layer_name", importer.COLOR_ATTRIBUTE))
    if target.new_uvs is not None:
        importer.add_uvs(data, target.new_uvs)
    uv_map = data.uv_layers.active.name
    image = importer.baked_image(f"{obj.name} Paint", painted.texture)

    def texture(node: bpy.types.ShaderNode) -> None:
        node.image = image
        tree = node.id_data
        uvs = tree.nodes.new("ShaderNodeUVMap")
        uvs.name, uvs.uv_map = PAINT_UV_NODE, uv_map
        uvs.location = (node.location.x - 200, node.location.y)
        tree.links.new(uvs.outputs["UV"], node.inputs["Vector"])

    return _show(obj, "ShaderNodeTexImage", texture)


def _show(obj: bpy.types.Object, node_type: str, configure) -> list[str]:
    materials = list(dict.fromkeys(slot.material for slot in obj.material_slots if slot.material is not None))
    if not materials:
        material, node = importer.base_colour_material(f"{obj.name} Paint", node_type)
        node.name = PAINT_NODE
        configure(node)
        if obj.material_slots:
            for slot in obj.material_slots:
                slot.material = material
        else:
            obj.data.materials.append(material)
        return []
    return [material.name for material in materials if not _wire(material, obj, node_type, configure)]


def _wire(material: bpy.types.Material, obj: bpy.types.Object, node_type: str, configure) -> bool:
    """The paint into the material's Principled BSDF base colour, where that changes no other
    object's look (the material is this mesh's alone) and drops nothing of the user's (the
    base colour is a plain value, or an earlier paint)."""
    if material.node_tree is None or (bpy.app.version < (5, 0, 0) and not material.use_nodes):
        return False
    if any(material in other.materials[:] for other in bpy.data.meshes if other != obj.data) or any(
        slot.material == material and slot.link == "OBJECT"
        for other in bpy.data.objects
        if other != obj
        for slot in other.material_slots
    ):
        return False
    nodes, links = material.node_tree.nodes, material.node_tree.links
    shader = next((node for node in nodes if node.type == "BSDF_PRINCIPLED"), None)
    if shader is None:
        return False
    socket = shader.inputs["Base Color"]
    if socket.is_linked and socket.links[0].from_node.name != PAINT_NODE:
        return False
    for name in (PAINT_NODE, PAINT_UV_NODE):
        if name in nodes:
            nodes.remove(nodes[name])
    node = nodes.new(node_type)
    node.name = PAINT_NODE
    node.location = (shader.location.x - 300, shader.location.y)
    configure(node)
    links.new(node.outputs["Color"], socket)
    return True


def refuse_unless_paintable(context: bpy.types.Context, objects: list[bpy.types.Object]) -> None:
    if context.mode != "OBJECT":
        raise EngineError("Paint from Photo works in Object Mode: leave Edit Mode first")
    if not objects:
        raise EngineError("select the mesh objects to paint first")
