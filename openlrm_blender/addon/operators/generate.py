"""Generate: images to mesh objects (several photos of one object to one, with TRELLIS),
interactive (the run looked at on a timer) or synchronous headless; Cancel (also Esc while a
run is under way); Free Model Memory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import ClassVar

import bpy

from ...engine import EngineError, Options
from ...engine.input.read import IMAGE_SUFFIXES, ImageSource
from ...engine.models.registry import Family, family_of
from ...engine.options import SETTINGS
from ...jobs.job import Job
from ...jobs.quads import DEFAULT_FACES, QuadRequest
from ...worker.client import free_models
from .. import remesh_command
from ..preferences import DEVICE_ITEMS, get_preferences
from ..properties import FLOATER_SHARE, MODEL_ITEMS, OUTPUT_ITEMS, TOPOLOGY_ITEMS, setting_property
from ..run import Run
from ..state import Runtime
from .engine_run import EngineRunOperator

# A textured run's triangles, for quads: this many per quad of the budget, so the remesh
# and the new texture take their shape and colours from a finer surface than their own.
TRIANGLES_PER_QUAD = 4
# What an object keeps of how it was made, where its family uses it (besides the model).
RECORDED = ("seed", "steps", "guidance", "tokens", "latent_steps", "latent_guidance", "view_mode")


class OPENLRM_OT_image_to_3d(EngineRunOperator, bpy.types.Operator):
    """Turn an image (or several: each its own object, or with TRELLIS photos of one object) into a coloured 3D mesh"""

    bl_idname = "openlrm.image_to_3d"
    bl_label = "Generate 3D Mesh"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}
    undo_label = "Image to 3D"

    filepath: bpy.props.StringProperty(name="Image File", subtype="FILE_PATH", options={"SKIP_SAVE"})
    # Blender's import convention: the file browser's (or a drop's) folder and chosen files;
    # a folder alone means every image in it.
    directory: bpy.props.StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE", "HIDDEN"})
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement, options={"SKIP_SAVE", "HIDDEN"})
    image_name: bpy.props.StringProperty(
        name="Image", description="An image datablock instead of a file", options={"SKIP_SAVE"}
    )
    model: bpy.props.EnumProperty(name="Model", items=MODEL_ITEMS, options={"SKIP_SAVE"})
    weights_dir: bpy.props.StringProperty(name="Model Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})
    device: bpy.props.EnumProperty(name="Device", items=DEVICE_ITEMS, options={"SKIP_SAVE"})
    # The engine's settings (options.SETTINGS) with soft limits only, which are their valid
    # ranges: a value passed from Python outside one is reported, never clamped silently.
    remove_background: setting_property("remove_background", hard_limits=False, options={"SKIP_SAVE"})
    recenter: setting_property("recenter", hard_limits=False, options={"SKIP_SAVE"})
    foreground_ratio: setting_property("foreground_ratio", hard_limits=False, options={"SKIP_SAVE"})
    input_size: setting_property("input_size", hard_limits=False, options={"SKIP_SAVE"})
    camera_distance: setting_property("camera_distance", hard_limits=False, options={"SKIP_SAVE"})
    resolution: setting_property("resolution", hard_limits=False, options={"SKIP_SAVE"})
    threshold: setting_property("threshold", hard_limits=False, options={"SKIP_SAVE"})
    steps: setting_property("steps", hard_limits=False, options={"SKIP_SAVE"})
    guidance: setting_property("guidance", hard_limits=False, options={"SKIP_SAVE"})
    latent_steps: setting_property("latent_steps", hard_limits=False, options={"SKIP_SAVE"})
    latent_guidance: setting_property("latent_guidance", hard_limits=False, options={"SKIP_SAVE"})
    view_mode: setting_property("view_mode", hard_limits=False, options={"SKIP_SAVE"})
    colours: setting_property("colours", hard_limits=False, options={"SKIP_SAVE"})
    seed: setting_property("seed", hard_limits=False, options={"SKIP_SAVE"})
    tokens: setting_property("tokens", hard_limits=False, options={"SKIP_SAVE"})
    mirror_photo: setting_property("mirror_photo", hard_limits=False, options={"SKIP_SAVE"})
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True, options={"SKIP_SAVE"})
    output: bpy.props.EnumProperty(name="Output", items=OUTPUT_ITEMS, options={"SKIP_SAVE"})
    topology: bpy.props.EnumProperty(name="Topology", items=TOPOLOGY_ITEMS, options={"SKIP_SAVE"})
    faces: setting_property("faces", hard_limits=False, options={"SKIP_SAVE"})
    texture_size: setting_property("texture_size", hard_limits=False, options={"SKIP_SAVE"})
    remove_floaters: bpy.props.BoolProperty(name="Remove Floaters", default=False, options={"SKIP_SAVE"})
    one_object: bpy.props.BoolProperty(
        name="Views of One Object", description="The images (files, or the sidebar's ticked images) are photos of one "
        "object: they make one object, the first the main photo (TRELLIS only)", options={"SKIP_SAVE"},
    )  # fmt: skip
    photo_texture: bpy.props.BoolProperty(
        name="Photo Texture", description="The photo's own pixels where it shows the object (textured output: "
        "the sidebar's setting; vertex colours: only when given)", default=True, options={"SKIP_SAVE"},
    )  # fmt: skip

    def _images(self, context: bpy.types.Context, one_object: bool) -> list[tuple[ImageSource | tuple, str]]:
        """Each image of this press and its object's name: the caller's files or folder, else
        the caller's or the sidebar's choice; several photos of one object as one tuple."""
        if self.properties.is_property_set("directory"):
            folder = Path(bpy.path.abspath(self.directory))
            paths = [folder / item.name for item in self.files if item.name]
            if not paths and folder.is_dir():
                paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
            if not paths:
                raise EngineError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) chosen or in this folder")
            images = [(path, path.stem) for path in paths]
        else:
            images = self._chosen_images(context)
        if one_object and len(images) > 1:
            return [(tuple(source for source, _ in images), images[0][1])]
        return images

    def _prepare(
        self, context: bpy.types.Context
    ) -> tuple[list[tuple[object, str]], Options, bool, dict, QuadRequest | None]:  # fmt: skip
        """Read everything Blender-side here, in the main thread: the worker sees only plain data."""
        self._check_ranges()
        settings = context.scene.openlrm
        prefs = get_preferences(context)
        weights_dir = self._value("weights_dir", str(prefs.weights_folder() or ""))
        model = self._value("model", prefs.default_model if settings.model == "DEFAULT" else settings.model)
        family = family_of(model, weights_dir)
        # The sidebar's switch counts only where the model takes several photos (it is greyed
        # out elsewhere); a caller's is passed on, and the engine says why not.
        images = self._images(context, self._value("one_object", settings.one_object and bool(family and family.views)))
        options = self._options(context, model, weights_dir, family)
        options.recenter = self._value("recenter", settings.recenter)
        options.input_size = self.input_size
        options.camera_distance = self._value("camera_distance", settings.camera_distance)
        options.tokens = self.tokens
        options.mirror_photo = self._value("mirror_photo", settings.mirror_photo)
        options.min_piece = FLOATER_SHARE if self._value("remove_floaters", settings.remove_floaters) else 0.0
        options.colours = self._value("colours", _sidebar_colours(settings, prefs, family))
        options.painter_weights = prefs.painter_folder()
        if self._value("output", settings.output) == "TEXTURED":
            options.textured = True
            options.faces = self._value("faces", settings.faces)
            options.texture_size = self._value("texture_size", int(settings.texture_size))
            options.photo_texture = self._value("photo_texture", settings.photo_texture)
        elif self.properties.is_property_set("photo_texture"):
            options.photo_texture = self.photo_texture
        quads = None
        if self._value("topology", settings.topology) == "QUADS":
            budget = self._value("faces", settings.faces) or DEFAULT_FACES
            if options.textured:  # triangles finer than the quads, for the quads' shape and their texture's
                options.faces = TRIANGLES_PER_QUAD * budget
            quads = QuadRequest(remesh_command.command(), budget, options.texture_size if options.textured else 0)
        options.validate()
        smooth_shading = self._value("smooth_shading", settings.smooth_shading)
        return images, options, smooth_shading, made_with(options, family), quads

    def _start(self, context: bpy.types.Context, listener=None) -> Run | None:
        try:
            images, options, smooth_shading, record, quads = self._prepare(context)
        except EngineError as exc:
            self._refused(exc)
            return None
        keep = get_preferences(context).keep_model_loaded

        def make_job(source: ImageSource | tuple, last: bool) -> Job:
            # A batch keeps its worker, and the model in it, until its last image.
            photos = source if isinstance(source, tuple) else (source,)
            return Job(
                photos[0], options, engine=Runtime.engine, listener=listener, keep_worker=keep or not last,
                low_priority=not bpy.app.background, quads=quads, views=photos[1:],
            )  # fmt: skip

        return Run(images, make_job, smooth_shading, record)


def _sidebar_colours(settings: bpy.types.PropertyGroup, prefs, family: Family | None) -> str:
    """The sidebar's Colours where they count: a shape-only model's, TRELLIS only where its
    weights are here (the sidebar says why not otherwise)."""
    if family is None or family.makes_colours or settings.colours != "trellis" or prefs.painter_missing():
        return "photo"
    return "trellis"


def made_with(options: Options, family: Family | None) -> dict[str, object]:
    """What made an object, kept on it as custom properties so it can be made again: the
    model, and a flow model's sampling."""
    record: dict[str, object] = {"openlrm_model": str(options.weights_dir or options.model)}
    if family is not None:
        record |= {f"openlrm_{name}": getattr(options, name) for name in RECORDED if name in family.uses}
    if family is not None and not family.makes_colours and options.colours != "photo":
        record["openlrm_colours"] = options.colours
    return record


class OPENLRM_OT_new_seed(bpy.types.Operator):
    """Roll a new seed: the next Generate grows another shape from the same image"""

    bl_idname = "openlrm.new_seed"
    bl_label = "New Seed"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.openlrm
        settings.seed = random.randrange(SETTINGS["seed"].maximum + 1)
        return {"FINISHED"}


class OPENLRM_OT_report(bpy.types.Operator):
    """Shows a message of a run that finished on a timer, as its operator would have"""

    bl_idname = "openlrm.report"
    bl_label = "OpenLRM Report"
    bl_options: ClassVar[set[str]] = {"INTERNAL"}

    level: bpy.props.EnumProperty(items=[(name, name, "") for name in ("INFO", "WARNING", "ERROR")])
    message: bpy.props.StringProperty()

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({self.level}, self.message)
        return {"FINISHED"}


class OPENLRM_FH_image_to_3d(bpy.types.FileHandler):
    """Image files dropped on the 3D viewport offer Image to 3D (Blender's own image drop stays)."""

    bl_idname = "OPENLRM_FH_image_to_3d"
    bl_label = "Image to 3D"
    bl_import_operator = "openlrm.image_to_3d"
    bl_file_extensions = ";".join(IMAGE_SUFFIXES)

    @classmethod
    def poll_drop(cls, context: bpy.types.Context) -> bool:
        return context.area is not None and context.area.type == "VIEW_3D"


class OPENLRM_OT_cancel(bpy.types.Operator):
    """Stop the running generation (also Esc while it runs); the finished objects of a batch stay"""

    bl_idname = "openlrm.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.job is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        Runtime.job.cancel()
        return {"FINISHED"}


class OPENLRM_OT_free_model(bpy.types.Operator):
    """Free the memory held by the loaded OpenLRM model"""

    bl_idname = "openlrm.free_model"
    bl_label = "Free Model Memory"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.job is None

    def execute(self, context: bpy.types.Context) -> set[str]:
        free_models()
        self.report({"INFO"}, "OpenLRM: model memory freed")
        return {"FINISHED"}
