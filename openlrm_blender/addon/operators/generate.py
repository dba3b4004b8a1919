"""Generate: one image to a mesh object, interactive (a modal operator polling the job on
a timer) or synchronous headless; Cancel; Free Model Memory."""

from __future__ import annotations

from pathlib import Path

import bpy

from ...engine import EngineError, Options
from ...jobs.job import Job, Status
from ...worker.client import free_models
from .. import importer
from ..blender_image import image_pixels
from ..lifecycle import remove_timer, stop_running_job
from ..preferences import DEVICE_ITEMS, get_preferences, torch_in_use
from ...engine.errors import kind_of
from ...engine.models.registry import family_of_folder, family_of_name
from ...engine.options import SETTINGS
from ..properties import FLOATER_SHARE, MODEL_ITEMS, OUTPUT_ITEMS, setting_property
from ..state import TICK_SECONDS, Runtime


# What a finished run tells the operator: its return set, a report level, a message.
Outcome = tuple[set[str], str, str]


class Run:
    """A job plus what its import needs; ``tick`` is the interactive path's timer step.

    Plain Python around ``bpy`` calls, so tests can drive it by hand where Blender has
    no event loop (background mode).
    """

    def __init__(self, job: Job, name: str, smooth_shading: bool) -> None:
        self.job, self.name, self.smooth_shading = job, name, smooth_shading
        Runtime.job, Runtime.status = job, job.poll()
        Runtime.last_error = Runtime.last_info = ""
        Runtime.last_error_kind = None

    def tick(self, context: bpy.types.Context) -> Outcome | None:
        """Take the latest progress for the panel; at the end, finish. None while running."""
        status = self.job.poll()
        Runtime.status = status
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":  # the sidebar only: redrawing the 3D view costs the worker CPU
                        region.tag_redraw()
        return self.finish(context, status) if status.finished else None

    def finish(self, context: bpy.types.Context, status: Status) -> Outcome:
        """A new object from the result, or a report for a cancel or an error; clears the run."""
        Runtime.job, Runtime.status = None, None
        if status.cancelled:
            Runtime.last_info = "Cancelled"
            return {"CANCELLED"}, "INFO", "OpenLRM: cancelled"
        if status.error:
            Runtime.last_error, Runtime.last_error_kind = status.error, status.error_kind
            return {"CANCELLED"}, "ERROR", status.error
        mesh = status.result.mesh
        self.job.progress("import", 0.0, f"{len(mesh.vertices):,} vertices")
        obj = importer.add_object(context, self.name, mesh, smooth_shading=self.smooth_shading)
        self.job.progress("import", 1.0, obj.name)
        Runtime.last_info = f"{obj.name}: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces"
        return {"FINISHED"}, "INFO", f"OpenLRM: {Runtime.last_info} in {status.result.timings['total']:.1f} s"


class OPENLRM_OT_image_to_3d(bpy.types.Operator):
    """Turn one image into a coloured 3D mesh with OpenLRM"""

    bl_idname = "openlrm.image_to_3d"
    bl_label = "Generate 3D Mesh"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(name="Image File", subtype="FILE_PATH", options={"SKIP_SAVE"})
    image_name: bpy.props.StringProperty(name="Image", description="An image datablock instead of a file", options={"SKIP_SAVE"})
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
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True, options={"SKIP_SAVE"})
    output: bpy.props.EnumProperty(name="Output", items=OUTPUT_ITEMS, options={"SKIP_SAVE"})
    faces: setting_property("faces", hard_limits=False, options={"SKIP_SAVE"})
    texture_size: setting_property("texture_size", hard_limits=False, options={"SKIP_SAVE"})
    remove_floaters: bpy.props.BoolProperty(name="Remove Floaters", default=False, options={"SKIP_SAVE"})
    photo_texture: bpy.props.BoolProperty(
        name="Photo Texture", description="The photo's own pixels where it shows the object (textured output: "
        "the sidebar's setting; vertex colours: only when given)", default=True, options={"SKIP_SAVE"},
    )  # fmt: skip

    _run: Run | None = None

    def _value(self, name: str, fallback):
        """The operator's property when the caller set it, else the panel's or preferences' value."""
        return getattr(self, name) if self.properties.is_property_set(name) else fallback

    def _check_ranges(self) -> None:
        """Each setting the caller gave within its valid range, before anything else is looked at."""
        for name, setting in SETTINGS.items():
            if hasattr(self.properties, name) and self.properties.is_property_set(name):
                setting.check(getattr(self, name))

    def _prepare(self, context: bpy.types.Context) -> tuple[object, str, Options, bool]:
        """Read everything Blender-side here, in the main thread: the worker sees only plain data."""
        self._check_ranges()
        settings = context.scene.openlrm
        prefs = get_preferences(context)
        if self.properties.is_property_set("image_name"):
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise EngineError(f"there is no image named '{self.image_name}' in this file")
        elif self.properties.is_property_set("filepath"):
            image = None
        else:
            image = settings.image if settings.source == "IMAGE" else None
            if settings.source == "IMAGE" and image is None:
                raise EngineError("choose an image first")
        if image is not None:
            source, name = image_pixels(image), Path(image.name).stem
        else:
            filepath = self._value("filepath", settings.filepath)
            if not filepath:
                raise EngineError("choose an image file first")
            source = Path(bpy.path.abspath(filepath))
            name = source.stem
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
            min_piece=FLOATER_SHARE if self._value("remove_floaters", settings.remove_floaters) else 0.0,
        )
        # Per-model numbers: the caller's, else the sidebar's where they were set for this
        # model's family, else (None) the family's published values.
        family = family_of_folder(Path(weights_dir)) if weights_dir else family_of_name(model)
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
        options.validate()
        return source, name or "OpenLRM", options, self._value("smooth_shading", settings.smooth_shading)

    def _start(self, context: bpy.types.Context, listener=None) -> Run | None:
        if Runtime.job is not None:
            self.report({"WARNING"}, "OpenLRM is already running: wait for it or cancel it")
            return None
        try:
            source, name, options, smooth_shading = self._prepare(context)
        except EngineError as exc:
            Runtime.last_error, Runtime.last_error_kind = str(exc), kind_of(exc)
            self.report({"ERROR"}, str(exc))
            return None
        job = Job(
            source,
            options,
            engine=Runtime.engine,
            listener=listener,
            keep_worker=get_preferences(context).keep_model_loaded,
            low_priority=not bpy.app.background,
        )
        return Run(job, name, smooth_shading)

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
        run.job.run()
        return self._report_outcome(run.finish(context, run.job.poll()))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        self._run = self._start(context)
        if self._run is None:
            return {"CANCELLED"}
        self._run.job.start()
        window_manager = context.window_manager
        Runtime.timer = window_manager, window_manager.event_timer_add(TICK_SECONDS, window=context.window)
        window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            self._run.job.cancel()
            return {"RUNNING_MODAL"}  # Esc is ours while we run; the next tick finishes
        if event.type == "TIMER":
            outcome = self._run.tick(context)
            if outcome is None:
                return {"RUNNING_MODAL"}
            remove_timer()
            return self._report_outcome(outcome)
        return {"PASS_THROUGH"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal run (its window closes, a file loads)."""
        stop_running_job()


class OPENLRM_OT_cancel(bpy.types.Operator):
    """Stop the running generation; nothing is added to the scene"""

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
