"""Run inside Blender on the headless run's .blend: the object, its colours and material."""

import sys

import bpy

import numpy as np

expected = np.load("/e2e/tiny/expected.npz")
objects = [obj for obj in bpy.data.objects if obj.type == "MESH" and obj.name.startswith("input")]
if len(objects) != 1:
    sys.exit(f"expected one mesh object named after input.png, found {[obj.name for obj in bpy.data.objects]}")
mesh = objects[0].data
if len(mesh.vertices) != len(expected["mesh_vertices"]) or len(mesh.polygons) != len(expected["mesh_faces"]):
    sys.exit(
        f"mesh has {len(mesh.vertices)} vertices / {len(mesh.polygons)} faces, "
        f"the reference {len(expected['mesh_vertices'])} / {len(expected['mesh_faces'])}"
    )
colours = mesh.color_attributes.get("Color")
if colours is None or colours.domain != "POINT" or mesh.color_attributes.active_color_name != "Color":
    sys.exit(f"no active point colour attribute 'Color': {[c.name for c in mesh.color_attributes]}")
values = np.empty(len(mesh.vertices) * 4, dtype=np.float32)
colours.data.foreach_get("color_srgb", values)
reference = expected["mesh_vertex_colors"].astype(np.float32) / 255.0
if np.abs(values.reshape(-1, 4)[:, :3] - reference).max() > 2.5 / 255:
    sys.exit("vertex colours differ from the reference")
material = objects[0].active_material
nodes = {node.bl_idname for node in material.node_tree.nodes} if material and material.use_nodes else set()
if "ShaderNodeVertexColor" not in nodes:
    sys.exit(f"material {material and material.name} does not read the colour attribute: {nodes}")
print(
    f"OpenLRM: check passed: {objects[0].name}, {len(mesh.vertices)} vertices, colour attribute "
    f"'{colours.name}' ({colours.data_type}), material '{material.name}'"
)
