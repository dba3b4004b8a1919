"""Generate: images to mesh objects, interactive (the run looked at on a timer) or
synchronous headless; Cancel (also Esc while a run is under way); Free Model Memory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import ClassVar

import bpy

from ...engine import EngineError, Options
from ...engine.errors import kind_of
from ...engine.input.read import IMAGE_SUFFIXES
from ...engine.models.registry import Family, family_of
from ...engine.options import SETTINGS
from ...jobs.job import Job, Status
from ...jobs.quads import DEFAULT_FACES, QuadRequest
from ...worker.client import free_models
from .. import remesh_command, ticker
from ..blender_image import image_pixels
from ..lifecycle import stop_running_job
from ..preferences import DEVICE_ITEMS, get_preferences, torch_in_use
from ..properties import FLOATER_SHARE, MODEL_ITEMS, OUTPUT_ITEMS, TOPOLOGY_ITEMS, setting_property
from ..run import Outcome, Run
from ..state import Runtime

# A textured run's triangles, for quads: this many per quad of the budget, so the remesh
# and the new texture take their shape and colours from a finer surface than their own.
TRIANGLES_PER_QUAD = 4


class OPENLRM_OT_image_to_3d(bpy.types.Operator):
    """Turn an image (or several: each its own object) into a coloured 3D mesh"""

    bl_idname = "openlrm.image_to_3d"
    bl_label = "Generate 3D Mesh"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}

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
    seed: setting_property("seed", hard_limits=False, options={"SKIP_SAVE"})
    tokens: setting_property("tokens", hard_limits=False, options={"SKIP_SAVE"})
    mirror_photo: setting_property("mirror_photo", hard_limits=False, options={"SKIP_SAVE"})
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True, options={"SKIP_SAVE"})
    output: bpy.props.EnumProperty(name="Output", items=OUTPUT_ITEMS, options={"SKIP_SAVE"})
    topology: bpy.props.EnumProperty(name="Topology", items=TOPOLOGY_ITEMS, options={"SKIP_SAVE"})
    faces: setting_property("faces", hard_limits=False, options={"SKIP_SAVE"})
    texture_size: setting_property("texture_size", hard_limits=False, options={"SKIP_SAVE"})
    remove_floaters: bpy.props.BoolProperty(name="Remove Floaters", default=False, options={"SKIP_SAVE"})
    photo_texture: bpy.props.BoolProperty(
        name="Photo Texture", description="The photo's own pixels where it shows the object (textured output: "
        "the sidebar's setting; vertex colours: only when given)", default=True, options={"SKIP_SAVE"},
    )  # fmt: skip

    def _value(self, name: str, fallback):
        """The operator's property when the caller set it, else the panel's or preferences' value."""
        return getattr(self, name) if self.properties.is_property_set(name) else fallback

    def _check_ranges(self) -> None:
        """Each setting the caller gave within its valid range, before anything else is looked at."""
        for name, setting in SETTINGS.items():
            if hasattr(self.properties, name) and self.properties.is_property_set(name):
                setting.check(getattr(self, name))

    def _images(self, context: bpy.types.Context) -> list[tuple[object, str]]:
        """Each image of this press and its object's name: the caller's files or folder, the
        caller's or the sidebar's image datablock, else the sidebar's file."""
        settings = context.scene.openlrm
        if self.properties.is_property_set("directory"):
            folder = Path(bpy.path.abspath(self.directory))
            paths = [folder / item.name for item in self.files if item.name]
            if not paths and folder.is_dir():
                paths = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
            if not paths:
                raise EngineError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) chosen or in this folder")
            return [(path, path.stem) for path in paths]
        if self.properties.is_property_set("image_name"):
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise EngineError(f"there is no image named '{self.image_name}' in this file")
            images = [image]
        elif self.properties.is_property_set("filepath") or settings.source == "FILE":
            images = []
        elif settings.source == "IMAGES":
            images = [image for image in bpy.data.images if image.openlrm_chosen]
            if not images:
                raise EngineError("tick the images to convert in the sidebar's list first")
        else:
            if settings.image is None:
                raise EngineError("choose an image first")
            images = [settings.image]
        if images:
            return [(image_pixels(image), Path(image.name).stem or "OpenLRM") for image in images]
        filepath = self._value("filepath", settings.filepath)
        if not filepath:
            raise EngineError("choose an image file first")
        source = Path(bpy.path.abspath(filepath))
        return [(source, source.stem or "OpenLRM")]

    def _prepare(
        self, context: bpy.types.Context
    ) -> tuple[list[tuple[object, str]], Options, bool, dict, QuadRequest | None]:  # fmt: skip
        """Read everything Blender-side here, in the main thread: the worker sees only plain data."""
        self._check_ranges()
        settings = context.scene.openlrm
        prefs = get_preferences(context)
        images = self._images(context)
        weights_dir = self._value("weights_dir", str(prefs.weights_folder() or ""))
        model = self._value("model", prefs.default_model if settings.model == "DEFAULT" else settings.model)
        options = Options(
            model=model,
            weights_dir=Path(weights_dir) if weights_dir else None,
            token=prefs.hub_token or None,
            offline=None if bpy.app.online_access else True,  # Blender's "Allow Online Access"
            cache_dir=Path(bpy.path.abspath(prefs.cache_dir)) if prefs.cache_dir else None,
            device=self._value("device", prefs.device),
            dtype=prefs.precision,
            remove_background=self._value("remove_background", settings.remove_background),
            background_model=prefs.background_choice(),
            recenter=self._value("recenter", settings.recenter),
            input_size=self.input_size,
            camera_distance=self._value("camera_distance", settings.camera_distance),
            steps=self._value("steps", settings.steps),
            guidance=self._value("guidance", settings.guidance),
            seed=self._value("seed", settings.seed),
            tokens=self.tokens,
            mirror_photo=self._value("mirror_photo", settings.mirror_photo),
            min_piece=FLOATER_SHARE if self._value("remove_floaters", settings.remove_floaters) else 0.0,
        )
        # Per-model numbers: the caller's, else the sidebar's where they were set for this
        # model's family, else (None) the family's published values.
        family = family_of(model, weights_dir)
        sidebar_fits = family is not None and settings.settings_family == family.name
        for key, setting in SETTINGS.items():
            if setting.per_model:
                setattr(options, key, self._value(key, getattr(settings, key) if sidebar_fits else None))
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
        if Runtime.job is not None:
            self.report({"WARNING"}, "OpenLRM is already running: wait for it or cancel it")
            return None
        try:
            images, options, smooth_shading, record, quads = self._prepare(context)
        except EngineError as exc:
            Runtime.last_error, Runtime.last_error_kind = str(exc), kind_of(exc)
            self.report({"ERROR"}, str(exc))
            return None
        keep = get_preferences(context).keep_model_loaded

        def make_job(source, last: bool) -> Job:
            # A batch keeps its worker, and the model in it, until its last image.
            return Job(
                source, options, engine=Runtime.engine, listener=listener, keep_worker=keep or not last,
                low_priority=not bpy.app.background, quads=quads,
            )  # fmt: skip

        return Run(images, make_job, smooth_shading, record)

    def _report_outcome(self, outcome: Outcome) -> set[str]:
        result, level, message = outcome
        self.report({level}, message)
        return result

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Synchronous run (headless, or called from a script): prints progress."""
        printed = set()

        def print_progress(status: Status) -> None:
            line = f"{status.fraction:4.0%} {status.label}"
            if line not in printed:
                printed.add(line)
                print(f"OpenLRM: {line}", flush=True)

        run = self._start(context, listener=print_progress)
        if run is None:
            return {"CANCELLED"}
        print(f"OpenLRM: {torch_in_use()}", flush=True)
        return self._report_outcome(run.run_all(context))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """The interactive run: started here, looked at on a timer (``ticker``), so the
        operator is done at once and Blender never holds a handler of ours."""
        if bpy.app.background:
            return self.execute(context)
        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        run.job.start()

        def step(context: bpy.types.Context) -> bool:
            outcome = run.tick(context)
            if outcome is None:
                return False
            Runtime.ticker = None
            result, level, message = outcome
            if "FINISHED" in result:  # one step to undo for what the press made
                bpy.ops.ed.undo_push(message=f"Image to 3D: {message.removeprefix('OpenLRM: ')}"[:63])
            ticker.report(level, message)
            return True

        Runtime.ticker = ticker.every_tick(step, context.window, failed=stop_running_job)
        return {"FINISHED"}


def made_with(options: Options, family: Family | None) -> dict[str, object]:
    """What made an object, kept on it as custom properties so it can be made again: the
    model, and a flow model's sampling."""
    record: dict[str, object] = {"openlrm_model": str(options.weights_dir or options.model)}
    if family is not None and family.sampled:
        record |= {f"openlrm_{name}": getattr(options, name) for name in ("seed", "steps", "guidance", "tokens")}
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
