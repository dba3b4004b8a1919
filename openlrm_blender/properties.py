"""Per-scene generation settings shown in the sidebar (saved with the .blend)."""

from __future__ import annotations

import bpy

from .engine import PUBLISHED_MODELS

_SIZES = {"small": "0.45 GB, 224 px", "base": "1.0 GB, 336 px", "large": "1.8 GB, 448 px"}
_DATA = {"obj": "trained on Objaverse", "mix": "trained on Objaverse and MVImgNet, better for photos"}

MODEL_ITEMS = [
    (
        name,
        f"{name.split('-')[1].capitalize()} {name.split('-')[2].capitalize()}",
        f"{name}: {_SIZES[name.split('-')[2]]}, {_DATA[name.split('-')[1]]}. Weights: CC BY-NC 4.0 (non-commercial)",
    )
    for name in PUBLISHED_MODELS
]


OUTPUT_ITEMS = [
    ("VERTEX_COLOURS", "Vertex Colours", "A dense mesh whose vertices carry the colours (the published output)"),
    ("TEXTURED", "Textured", "A simplified, UV-mapped mesh with a baked colour texture (for games, the web, other tools)"),
]
TEXTURE_SIZE_ITEMS = [(str(size), f"{size} px", f"A {size} x {size} texture") for size in (512, 1024, 2048, 4096)]
FLOATER_SHARE = 0.01  # Remove Floaters drops pieces with less than this share of the faces


class OpenLRMSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(
        name="Source",
        items=[("FILE", "File", "An image file on disk"), ("IMAGE", "Image", "An image already in Blender")],
        default="FILE",
    )
    filepath: bpy.props.StringProperty(name="Image File", subtype="FILE_PATH")
    image: bpy.props.PointerProperty(name="Image", type=bpy.types.Image)
    model: bpy.props.EnumProperty(
        name="Model",
        items=[("DEFAULT", "Default", "The default model set in the add-on's preferences"), *MODEL_ITEMS],
        default="DEFAULT",
    )
    remove_background: bpy.props.BoolProperty(
        name="Remove Background", description="Cut the object out when the image has no transparency", default=True
    )
    recenter: bpy.props.BoolProperty(name="Recenter", description="Crop and centre the object", default=True)
    foreground_ratio: bpy.props.FloatProperty(
        name="Foreground Ratio", description="Object size in the prepared image", default=0.8, min=0.3, max=1.0
    )
    camera_distance: bpy.props.FloatProperty(name="Camera Distance", default=2.0, min=0.5, max=10.0)
    resolution: bpy.props.IntProperty(
        name="Mesh Resolution", description="Grid points per axis for marching cubes", default=384, min=32, max=1024
    )
    threshold: bpy.props.FloatProperty(name="Density Threshold", default=3.0, min=0.0, max=100.0)
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True)
    output: bpy.props.EnumProperty(
        name="Output",
        items=OUTPUT_ITEMS,
        default="VERTEX_COLOURS",
    )
    target_faces: bpy.props.IntProperty(
        name="Faces", description="Simplify to about this many faces (0: keep every face)", default=50000, min=0
    )
    texture_size: bpy.props.EnumProperty(name="Texture Size", items=TEXTURE_SIZE_ITEMS, default="1024")
    remove_floaters: bpy.props.BoolProperty(
        name="Remove Floaters",
        description="Drop disconnected pieces with less than 1% of the faces (off: the published mesh as it is)",
        default=False,
    )
