"""Per-scene generation settings shown in the sidebar (saved with the .blend), and the
Blender property of any engine setting, made from the engine's one table of them."""

from __future__ import annotations

import bpy

from ..engine import PUBLISHED_MODELS
from ..engine.models.registry import TRELLIS, TRIPOSG, TRIPOSR, Family, family_of_name
from ..engine.options import SETTINGS, Options
from ..jobs.quads import DEFAULT_FACES
from . import ADDON_PACKAGE

_SIZES = {"small": "0.45 GB, 224 px", "base": "1.0 GB, 336 px", "large": "1.8 GB, 448 px"}
_DATA = {"obj": "trained on Objaverse", "mix": "trained on Objaverse and MVImgNet, better for photos"}


def _model_item(name: str) -> tuple[str, str, str]:
    family = family_of_name(name)
    if family is TRIPOSR:
        return name, "TripoSR", f"stabilityai/TripoSR: 1.7 GB, 512 px. {family.licence}"
    if family is TRIPOSG:
        return (
            name,
            "TripoSG",
            (
                f"VAST-AI/TripoSG: 7.9 GB, a flow model with detailed shapes, coloured from the photo: seconds on a "
                f"GPU, most of an hour on a CPU. {family.licence}"
            ),
        )
    if family is TRELLIS:  # 3.0 GB of float16 checkpoints, and DINOv2-L/14's 304 M float32 values
        return (
            name,
            "TRELLIS",
            (
                "microsoft/TRELLIS-image-large: 4.2 GB with its image encoder, two flow models that make the whole "
                "object's shape and colours, from one photo or several of one object; it also paints your meshes. "
                f"Seconds on a GPU, an hour or more on a CPU. {family.licence}"
            ),
        )
    data, size = name.split("-")[1:3]
    return (
        name,
        f"OpenLRM {data.capitalize()} {size.capitalize()}",
        f"{name}: {_SIZES[size]}, {_DATA[data]}. {family.licence}",
    )


MODEL_ITEMS = [_model_item(name) for name in PUBLISHED_MODELS]


def use_published_settings(settings: bpy.types.PropertyGroup, family: Family) -> None:
    """The sidebar's per-model numbers set to what ``family`` publishes, so the sidebar shows
    the values a run will use; ``settings_family`` remembers whose they are."""
    published = Options().for_family(family.settings)
    for name, setting in SETTINGS.items():
        if setting.per_model:
            setattr(settings, name, getattr(published, name))
    settings.settings_family = family.name


def _model_chosen(settings: bpy.types.PropertyGroup, context: bpy.types.Context) -> None:
    preferences = context.preferences.addons[ADDON_PACKAGE].preferences
    use_published_settings(settings, preferences.family(None if settings.model == "DEFAULT" else settings.model))


OUTPUT_ITEMS = [
    ("VERTEX_COLOURS", "Vertex Colours", "A dense mesh whose vertices carry the colours (the published output)"),
    (
        "TEXTURED",
        "Textured",
        "A simplified, UV-mapped mesh with a baked colour texture (for games, the web, other tools)",
    ),
]
TOPOLOGY_ITEMS = [
    ("TRIANGLES", "Triangles", "The model's own triangles (marching cubes)"),
    ("QUADS", "Quads", "Quads at the face budget, made by Blender's voxel remesh and QuadriFlow (seconds more), "
     "for sculpting, rigging and retopology"),
]  # fmt: skip


def _topology_chosen(settings: bpy.types.PropertyGroup, context: bpy.types.Context) -> None:
    """Quads take the budget artists ask for unless one was chosen: "keep every face" (0)
    means nothing to a remesher, and the textured triangles' 50,000 would take QuadriFlow a
    minute."""
    if settings.topology == "QUADS" and settings.faces in (0, SETTINGS["faces"].blender_default):
        settings.faces = DEFAULT_FACES


TEXTURE_SIZE_ITEMS = [(str(size), f"{size} px", f"A {size} x {size} texture") for size in (512, 1024, 2048, 4096)]
FLOATER_SHARE = 0.01  # Remove Floaters drops pieces with less than this share of the faces


# A word setting's words as a menu shows them: each word's label and tooltip.
CHOICE_WORDS = {
    "stochastic": ("Stochastic", "Each step takes the next photo in turn (the published default)"),
    "multidiffusion": ("Multidiffusion", "Every step takes every photo (slower, one model call per photo a step)"),
    "photo": ("Photo", "The photo laid on the shape, and its colours grown over the sides it does not show"),
    "trellis": ("TRELLIS", "TRELLIS paints the whole object from the photo, every side (needs TRELLIS's weights)"),
}


def setting_property(name: str, *, hard_limits: bool, **extra) -> bpy.props._PropertyDeferred:
    """One of the engine's settings (``options.SETTINGS``) as a Blender property: the sidebar
    clamps to the valid range (hard limits); the operator only suggests it (soft limits),
    so a value from Python outside it is reported by ``Options.validate``, not clamped. A
    word setting is a menu of its words, which are the engine's own."""
    setting = SETTINGS[name]
    default = setting.default if setting.blender_default is None else setting.blender_default
    common = dict(name=setting.label, description=setting.help, default=default, **extra)
    if setting.choices:
        items = [(word, *CHOICE_WORDS[word]) for word in setting.choices]
        return bpy.props.EnumProperty(items=items, **common)
    if isinstance(setting.default, bool):
        return bpy.props.BoolProperty(**common)
    kind = bpy.props.IntProperty if isinstance(setting.default, int) else bpy.props.FloatProperty
    low, high = ("min", "max") if hard_limits else ("soft_min", "soft_max")
    return kind(**common, **{low: setting.minimum, high: setting.maximum})


class OpenLRMSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(
        name="Source",
        items=[
            ("FILE", "File", "An image file on disk"),
            ("IMAGE", "Image", "An image already in Blender"),
            (
                "IMAGES",
                "Images",
                "Several images already in Blender, each its own object (or, with TRELLIS, photos of one object): "
                "tick them in the list",
            ),
        ],
        default="FILE",
    )
    one_object: bpy.props.BoolProperty(
        name="Views of One Object",
        description="The ticked images are photos of one object from several sides: they make one object, the first "
        "ticked the main photo (TRELLIS only: the other models take one photo)",
        default=False,
    )
    image_index: bpy.props.IntProperty(name="Active Image", options={"HIDDEN"})  # the list's highlighted row
    filepath: bpy.props.StringProperty(name="Image File", subtype="FILE_PATH")
    image: bpy.props.PointerProperty(name="Image", type=bpy.types.Image)
    model: bpy.props.EnumProperty(
        name="Model",
        items=[("DEFAULT", "Default", "The default model set in the add-on's preferences"), *MODEL_ITEMS],
        default="DEFAULT",
        update=_model_chosen,
    )
    settings_family: bpy.props.StringProperty(
        name="Settings Family", description="The model family the per-model numbers below were set for",
        default="openlrm", options={"HIDDEN"},
    )  # fmt: skip
    remove_background: setting_property("remove_background", hard_limits=True)
    recenter: setting_property("recenter", hard_limits=True)
    foreground_ratio: setting_property("foreground_ratio", hard_limits=True)
    camera_distance: setting_property("camera_distance", hard_limits=True)
    resolution: setting_property("resolution", hard_limits=True)
    threshold: setting_property("threshold", hard_limits=True)
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True)
    output: bpy.props.EnumProperty(
        name="Output",
        items=OUTPUT_ITEMS,
        default="VERTEX_COLOURS",
    )
    topology: bpy.props.EnumProperty(
        name="Topology", items=TOPOLOGY_ITEMS, default="TRIANGLES", update=_topology_chosen
    )
    faces: setting_property("faces", hard_limits=True)
    texture_size: bpy.props.EnumProperty(
        name="Texture Size", items=TEXTURE_SIZE_ITEMS, default=str(SETTINGS["texture_size"].default)
    )
    photo_texture: bpy.props.BoolProperty(
        name="Photo Texture",
        description="Put the photo's own pixels on the part of the object it shows (sharper than the model's colours)",
        default=True,
    )
    show_advanced: bpy.props.BoolProperty(name="Advanced", description="Show the less everyday settings", default=False)
    steps: setting_property("steps", hard_limits=True)
    guidance: setting_property("guidance", hard_limits=True)
    latent_steps: setting_property("latent_steps", hard_limits=True)
    latent_guidance: setting_property("latent_guidance", hard_limits=True)
    view_mode: setting_property("view_mode", hard_limits=True)
    colours: setting_property("colours", hard_limits=True)
    seed: setting_property("seed", hard_limits=True)
    paint_photo: bpy.props.BoolProperty(
        name="Photo on the Front",
        description="Paint from Photo lays the photo's own pixels on the side it shows (sharper, where the mesh "
        "matches the photo's view; off: TRELLIS's colours alone)",
        default=False,
    )
    mirror_photo: setting_property("mirror_photo", hard_limits=True)
    remove_floaters: bpy.props.BoolProperty(
        name="Remove Floaters",
        description="Drop disconnected pieces with less than 1% of the faces (off: the published mesh as it is)",
        default=False,
    )


# On every image datablock: whether Generate takes it when the sidebar's source is Images.
IMAGE_CHOSEN = bpy.props.BoolProperty(
    name="Image to 3D", description="Make this image into an object when Generate is pressed (source: Images)"
)
