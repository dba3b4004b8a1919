"""Blender's own picture of an object as a user sees it: rendered by Workbench (flat light by
default, the texture's or the vertices' colours, Standard view transform, the image's own
filtering) from a model's source camera or round the object; a GLB first imported by
Blender's glTF importer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from openlrm_blender.engine.camera import SourceCamera


def render_glb(
    glb: Path, camera: SourceCamera, size: int, workdir: Path, turn_degrees: float = 0.0, light: str = "FLAT"
) -> np.ndarray:
    """(size, size, 4) float in [0, 1]: the GLB seen from ``camera``, alpha where it covers;
    ``turn_degrees`` moves the camera round the object (about +Z, 180: from behind), ``light``
    is Workbench's (FLAT: the texture's colours as they are; STUDIO shows the shape too)."""
    import bpy  # first: it puts Blender's own modules (addon_utils) on the path

    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_scene_gltf2", default_set=True, handle_error=None)
    assert bpy.ops.import_scene.gltf(filepath=str(glb)) == {"FINISHED"}
    return render_scene(camera, size, workdir / f"{glb.stem}-{turn_degrees:g}.png", turn_degrees, light)


def render_scene(
    camera: SourceCamera,
    size: int,
    path: Path,
    turn_degrees: float = 0.0,
    light: str = "FLAT",
    colours: str = "TEXTURE",
) -> np.ndarray:
    """(size, size, 4) float in [0, 1]: what the scene's renderable objects look like from
    ``camera`` (see ``render_glb``), saved at ``path``; ``colours`` is Workbench's colour
    type (TEXTURE, or VERTEX for vertex colours)."""
    import bpy

    scene = bpy.context.scene
    data = bpy.data.cameras.new("source camera")
    data.sensor_fit = "HORIZONTAL"
    data.lens = camera.focal * data.sensor_width  # the focal length as a share of the image's side
    data.clip_start, data.clip_end = 0.01, 100.0
    view = bpy.data.objects.new("source camera", data)
    scene.collection.objects.link(view)
    turn = math.radians(turn_degrees)
    view.location = (camera.distance * math.sin(turn), -camera.distance * math.cos(turn), 0.0)
    view.rotation_euler = (math.pi / 2, 0.0, turn)  # looking at the origin, +Z up
    scene.camera = view
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = light
    scene.display.shading.color_type = colours
    scene.display.render_aa = "OFF"
    scene.view_settings.view_transform = "Standard"
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
