"""Mesh arrays (the engine's triangles, or the quads of ``jobs.quads``) -> a Blender object
with vertex colours and a material that shows them, or (textured) a UV map and a material
whose Image Texture is the baked image, packed into the .blend.

The engine's frame (+Z up, input view from -Y) is Blender's own, so vertices go in
unrotated. Everything is written with ``foreach_set`` so a million vertices take seconds.
"""

from __future__ import annotations

import bpy

import numpy as np

from ..engine import Mesh
from ..engine.surface.uv import weld
from ..jobs.quads import PolygonMesh

COLOR_ATTRIBUTE = "Color"


def polygons(mesh: Mesh) -> PolygonMesh:
    """The engine's triangles as Blender keeps them: a textured mesh's vertices, cut along
    its charts' seams, welded again (its UV map is per face corner)."""
    vertices, faces, colours = mesh.vertices, mesh.faces, mesh.colours_u8
    uvs = mesh.uvs[faces.ravel()] if mesh.textured else None
    if mesh.textured:
        vertices, faces, first = weld(vertices, faces)
        colours = colours[first]
    return PolygonMesh(vertices, np.full(len(faces), 3, dtype=np.int32), faces.ravel(), colours, uvs, mesh.texture)


def build_mesh(name: str, mesh: PolygonMesh, smooth_shading: bool = False) -> bpy.types.Mesh:
    """The mesh with its colour attribute."""
    data = bpy.data.meshes.new(name)
    vertices, colours = mesh.vertices, mesh.colours
    corners = np.ascontiguousarray(mesh.corners, dtype=np.int32)
    data.vertices.add(len(vertices))
    data.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    data.loops.add(corners.size)
    data.loops.foreach_set("vertex_index", corners)
    data.polygons.add(len(mesh.sizes))
    data.polygons.foreach_set("loop_start", (np.cumsum(mesh.sizes) - mesh.sizes).astype(np.int32))
    data.polygons.foreach_set("loop_total", np.ascontiguousarray(mesh.sizes, dtype=np.int32))
    data.polygons.foreach_set("use_smooth", np.full(len(mesh.sizes), smooth_shading, dtype=bool))
    set_colours(data, colours)
    data.update()
    return data


def set_colours(data: bpy.types.Mesh, colours: np.ndarray) -> None:
    """8-bit colours (V, 3) as the mesh's point colour attribute, shown and rendered (one of
    the same name goes first). Byte colours are stored as sRGB: writing the model's 8-bit
    values through ``color_srgb`` keeps them exactly, and Blender shows them as the image
    showed them."""
    existing = data.attributes.get(COLOR_ATTRIBUTE)
    if existing is not None:
        data.attributes.remove(existing)
    attribute = data.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    rgba = np.ones((len(colours), 4), dtype=np.float32)
    rgba[:, :3] = colours / np.float32(255.0)
    attribute.data.foreach_set("color_srgb", rgba.ravel())
    data.color_attributes.active_color = attribute
    data.color_attributes.render_color_index = data.color_attributes.active_color_index


def base_colour_material(name: str, node_type: str) -> tuple[bpy.types.Material, bpy.types.ShaderNode]:
    """A material whose Principled BSDF takes its base colour from a new node of this type."""
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # from 5.0 every material has its node tree
        material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    shader = next(node for node in nodes if node.type == "BSDF_PRINCIPLED")
    source = nodes.new(node_type)
    source.location = (shader.location.x - 300, shader.location.y)
    links.new(source.outputs["Color"], shader.inputs["Base Color"])
    return material, source


def vertex_colour_material(name: str) -> bpy.types.Material:
    material, colour = base_colour_material(name, "ShaderNodeVertexColor")
    colour.layer_name = COLOR_ATTRIBUTE
    return material


def add_uvs(data: bpy.types.Mesh, uvs: np.ndarray) -> None:
    layer = data.uv_layers.new(name="UVMap")
    layer.data.foreach_set("uv", np.ascontiguousarray(uvs, dtype=np.float32).ravel())


def baked_image(name: str, texture: np.ndarray) -> bpy.types.Image:
    """The texture as a packed byte image in sRGB: its values are the model's display
    colours, as the vertex colours are, so both look the same."""
    size = texture.shape[0]
    image = bpy.data.images.new(name, size, size, alpha=False)
    image.colorspace_settings.name = "sRGB"
    rgba = np.ones((size, size, 4), dtype=np.float32)
    rgba[..., :3] = texture[::-1] / np.float32(255.0)  # Blender's rows run bottom to top
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    return image


def texture_material(name: str, image: bpy.types.Image) -> bpy.types.Material:
    material, texture = base_colour_material(name, "ShaderNodeTexImage")
    texture.image = image
    return material


def add_object(
    context: bpy.types.Context, name: str, mesh: Mesh | PolygonMesh, smooth_shading: bool = False,
    collection: bpy.types.Collection | None = None,
) -> bpy.types.Object:  # fmt: skip
    """Link a new object at the 3D cursor, selected and active, in ``collection`` (default:
    the active one)."""
    if isinstance(mesh, Mesh):
        mesh = polygons(mesh)
    data = build_mesh(name, mesh, smooth_shading)
    if mesh.texture is not None:
        add_uvs(data, mesh.uvs)
        data.materials.append(texture_material(name, baked_image(name, mesh.texture)))
    else:
        data.materials.append(vertex_colour_material(name))
    obj = bpy.data.objects.new(name, data)
    (collection or context.collection).objects.link(obj)
    obj.location = context.scene.cursor.location
    if collection is None or not collection.objects[:-1]:  # a batch keeps its objects selected together
        for other in context.view_layer.objects:
            # Blender 5.0 lists an object removed since the last view-layer sync as None.
            if other is not None and other.select_get():
                other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj
