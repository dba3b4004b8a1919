"""Operators: Image to 3D (interactive in a worker thread, or synchronous headless), Cancel,
Free Model Memory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np

from . import importer, pytorch_install
from .engine import EngineError, Options
from .engine.image_source import read_rgba
from .engine.pytorch import install_command, torch_found
from .engine import background
from .job import Download, Engine, Job, Status, free_models
from .preferences import DEVICE_ITEMS, TORCH_VARIANT_ITEMS, get_preferences, pytorch_root, torch_in_use
from .properties import FLOATER_SHARE, MODEL_ITEMS, OUTPUT_ITEMS

TICK_SECONDS = 0.1


class Runtime:
    """What the sidebar shows about the current run; never saved in a .blend."""

    engine = Engine()  # tests name a fake engine here
    job: Job | None = None
    status: Status | None = None
    timer: tuple[bpy.types.WindowManager, bpy.types.Timer] | None = None  # the interactive run's
    download: Download | None = None  # of a background removal model, from the preferences
    torch_install: pytorch_install.Install | None = None
    torch_check: pytorch_install.Check | None = None
    torch_devices: str = ""  # what the last check found
    last_torch_error: str = ""
    last_torch_log: str = ""  # pip's output of the failed install
    last_error: str = ""
    last_info: str = ""


# What a finished run tells the operator: its return set, a report level, a message.
Outcome = tuple[set[str], str, str]


class Run:
    """A job plus what its import needs; ``tick`` is the interactive path's timer step.

    Plain Python around ``bpy`` calls, so tests can drive it by hand where Blender has
    no event loop (background mode).
    """

    def __init__(self, job: Job, name: str, smooth: bool) -> None:
        self.job, self.name, self.smooth = job, name, smooth
        Runtime.job, Runtime.status = job, job.poll()
        Runtime.last_error = Runtime.last_info = ""

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
            Runtime.last_error = status.error
            return {"CANCELLED"}, "ERROR", status.error
        mesh = status.result.mesh
        obj = importer.add_object(context, self.name, mesh, smooth=self.smooth)
        Runtime.last_info = f"{obj.name}: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces"
        return {"FINISHED"}, "INFO", f"OpenLRM: {Runtime.last_info} in {status.result.timings['total']:.1f} s"


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def image_pixels(image: bpy.types.Image) -> np.ndarray:
    """The image as float RGBA rows top to bottom, read here in the main thread.

    Byte images hold sRGB values already; float images (EXR, renders) are linear and are
    encoded to sRGB so the model sees what the user sees.
    """
    if image.type == "RENDER_RESULT":
        with tempfile.TemporaryDirectory(prefix="openlrm-") as folder:
            path = Path(folder) / "render.png"
            image.save_render(str(path))
            return read_rgba(path)
    width, height = image.size
    if width == 0 or height == 0:
        raise EngineError(f"image '{image.name}' has no pixels (is its file missing?)")
    channels = image.channels
    buffer = np.empty(width * height * channels, dtype=np.float32)
    image.pixels.foreach_get(buffer)
    pixels = buffer.reshape(height, width, channels)[::-1]
    if image.is_float:
        pixels = pixels.copy()
        pixels[..., :3] = linear_to_srgb(pixels[..., : min(3, channels)])
    return np.ascontiguousarray(pixels)


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
    remove_background: bpy.props.BoolProperty(name="Remove Background", default=True, options={"SKIP_SAVE"})
    recenter: bpy.props.BoolProperty(name="Recenter", default=True, options={"SKIP_SAVE"})
    # Numbers have soft limits only, and those are their valid ranges: a value passed from
    # Python outside one is reported (see _check_ranges), never clamped silently.
    foreground_ratio: bpy.props.FloatProperty(
        name="Foreground Ratio", default=0.8, soft_min=0.05, soft_max=1.0, options={"SKIP_SAVE"}
    )
    input_size: bpy.props.IntProperty(
        name="Input Size",
        description="0: the model's published size; else a multiple of 14",
        default=0,
        soft_min=0,
        soft_max=1008,
        options={"SKIP_SAVE"},
    )
    camera_distance: bpy.props.FloatProperty(
        name="Camera Distance", default=2.0, soft_min=0.1, soft_max=10.0, options={"SKIP_SAVE"}
    )
    resolution: bpy.props.IntProperty(
        name="Mesh Resolution", default=384, soft_min=8, soft_max=1024, options={"SKIP_SAVE"}
    )
    threshold: bpy.props.FloatProperty(name="Density Threshold", default=3.0, options={"SKIP_SAVE"})
    smooth_shading: bpy.props.BoolProperty(name="Smooth Shading", default=True, options={"SKIP_SAVE"})
    output: bpy.props.EnumProperty(name="Output", items=OUTPUT_ITEMS, options={"SKIP_SAVE"})
    target_faces: bpy.props.IntProperty(
        name="Faces", description="Textured: simplify to about this many faces (0: all)", default=50000,
        soft_min=0, soft_max=10_000_000, options={"SKIP_SAVE"},
    )  # fmt: skip
    texture_size: bpy.props.IntProperty(
        name="Texture Size", default=1024, soft_min=64, soft_max=8192, options={"SKIP_SAVE"}
    )
    remove_floaters: bpy.props.BoolProperty(name="Remove Floaters", default=False, options={"SKIP_SAVE"})

    _run: Run | None = None

    def _value(self, name: str, fallback):
        """The operator's property when the caller set it, else the panel's or preferences' value."""
        return getattr(self, name) if self.properties.is_property_set(name) else fallback

    def _check_ranges(self) -> None:
        """Each number set by the caller within its valid range (its soft limits)."""
        for prop in self.properties.bl_rna.properties:
            if prop.type in {"INT", "FLOAT"} and self.properties.is_property_set(prop.identifier):
                value = getattr(self, prop.identifier)
                if not prop.soft_min <= value <= prop.soft_max:
                    raise EngineError(
                        f"{prop.identifier} = {value:g} is out of range: use {prop.soft_min:g} to {prop.soft_max:g}"
                    )

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
        from_folder = prefs.weights_source == "FOLDER" and prefs.weights_dir
        weights_dir = self._value("weights_dir", bpy.path.abspath(prefs.weights_dir) if from_folder else "")
        options = Options(
            model=self._value("model", prefs.default_model if settings.model == "DEFAULT" else settings.model),
            weights_dir=Path(weights_dir) if weights_dir else None,
            token=prefs.hub_token or None,
            offline=None if bpy.app.online_access else True,  # Blender's "Allow Online Access"
            cache_dir=Path(bpy.path.abspath(prefs.cache_dir)) if prefs.cache_dir else None,
            device=self._value("device", prefs.device),
            dtype=prefs.precision,
            remove_background=self._value("remove_background", settings.remove_background),
            background_model=prefs.background_choice(),
            recenter=self._value("recenter", settings.recenter),
            foreground_ratio=self._value("foreground_ratio", settings.foreground_ratio),
            input_size=self.input_size,
            camera_distance=self._value("camera_distance", settings.camera_distance),
            resolution=self._value("resolution", settings.resolution),
            threshold=self._value("threshold", settings.threshold),
            min_piece=FLOATER_SHARE if self._value("remove_floaters", settings.remove_floaters) else 0.0,
        )
        if self._value("output", settings.output) == "TEXTURED":
            options.faces = self._value("target_faces", settings.target_faces)
            options.texture_size = self._value("texture_size", int(settings.texture_size))
        options.validate()
        return source, name or "OpenLRM", options, self._value("smooth_shading", settings.smooth_shading)

    def _start(self, context: bpy.types.Context, listener=None) -> Run | None:
        if Runtime.job is not None:
            self.report({"WARNING"}, "OpenLRM is already running: wait for it or cancel it")
            return None
        try:
            source, name, options, smooth = self._prepare(context)
        except EngineError as exc:
            Runtime.last_error = str(exc)
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
        return Run(job, name, smooth)

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
            _remove_timer()
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


class OPENLRM_OT_copy_torch_command(bpy.types.Operator):
    """Copy the command that installs PyTorch's CPU build into Blender's own Python"""

    bl_idname = "openlrm.copy_torch_command"
    bl_label = "Copy Install Command"

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.window_manager.clipboard = install_command()
        self.report({"INFO"}, f"Copied: {install_command()}  (run it, then restart Blender)")
        return {"FINISHED"}


class TaskOperator:
    """An operator whose work runs in a thread (a Download, an Install): synchronous when
    headless or called from a script, else modal, redrawing its area until the task ends."""

    slot = ""  # the Runtime attribute that holds the task while it runs
    _timer = None

    def make_task(self, context: bpy.types.Context):
        raise NotImplementedError

    def outcome(self, context: bpy.types.Context, task) -> set[str]:
        raise NotImplementedError

    def _finish(self, context: bpy.types.Context, task) -> set[str]:
        setattr(Runtime, self.slot, None)
        if task.error:
            self.report({"ERROR"}, task.error)
            return {"CANCELLED"}
        return self.outcome(context, task)

    def execute(self, context: bpy.types.Context) -> set[str]:
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.run()
        return self._finish(context, task)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.start()
        self._timer = context.window_manager.event_timer_add(TICK_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        task = getattr(Runtime, self.slot)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if context.area is not None:
            context.area.tag_redraw()
        if task is not None and not task.finished:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, task) if task is not None else {"CANCELLED"}


def _online(cls) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set("Online access is off (Preferences > System)")
    return bpy.app.online_access


class OPENLRM_OT_download_background_model(TaskOperator, bpy.types.Operator):
    """Download this background removal model now, from rembg's release files, into rembg's folder"""

    bl_idname = "openlrm.download_background_model"
    bl_label = "Download Now"
    slot = "download"

    model: bpy.props.EnumProperty(
        name="Model", items=[(name, name, model.description) for name, model in background.MODELS.items()]
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _online(cls) and Runtime.download is None

    def make_task(self, context: bpy.types.Context) -> Download:
        return Download(self.model)

    def outcome(self, context: bpy.types.Context, task: Download) -> set[str]:
        self.report({"INFO"}, f"OpenLRM: {task.name} is in {task.path}")
        return {"FINISHED"}


class OPENLRM_OT_install_torch(TaskOperator, bpy.types.Operator):
    """Install a PyTorch for this machine into the add-on's own folder with Blender's pip; it is
    checked in a fresh process before it is used"""

    bl_idname = "openlrm.install_torch"
    bl_label = "Install PyTorch"
    slot = "torch_install"

    variant: bpy.props.EnumProperty(name="Variant", items=TORCH_VARIANT_ITEMS)
    index_url: bpy.props.StringProperty(name="Index URL", description="Empty: PyTorch's own index for the variant")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if Runtime.job is not None:
            cls.poll_message_set("Wait for the run to end, or cancel it")
            return False
        return _online(cls) and Runtime.torch_install is None

    def make_task(self, context: bpy.types.Context) -> pytorch_install.Install:
        free_models()  # the idle worker holds the PyTorch in use: it must not be in the way
        Runtime.last_torch_error = Runtime.last_torch_log = ""
        return pytorch_install.Install(pytorch_root(create=True), self.variant, self.index_url)

    def _finish(self, context: bpy.types.Context, task: pytorch_install.Install) -> set[str]:
        if task.error:
            Runtime.last_torch_error, Runtime.last_torch_log = task.error, task.log
        return super()._finish(context, task)

    def outcome(self, context: bpy.types.Context, task: pytorch_install.Install) -> set[str]:
        pytorch_install.activate(task.root)
        torch_in_use.cache_clear()
        Runtime.torch_devices = pytorch_install.describe_devices(task.result)
        free_models()  # the next run's worker starts on the new PyTorch: no restart needed
        self.report({"INFO"}, f"OpenLRM: PyTorch {task.result['version']} installed and in use")
        return {"FINISHED"}


class OPENLRM_OT_check_torch(TaskOperator, bpy.types.Operator):
    """Ask the PyTorch in use, in a fresh process, which devices it sees"""

    bl_idname = "openlrm.check_torch"
    bl_label = "Check"
    slot = "torch_check"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.torch_check is None and torch_found() is not None

    def make_task(self, context: bpy.types.Context) -> pytorch_install.Check:
        return pytorch_install.Check(torch_found()[1].parent)

    def outcome(self, context: bpy.types.Context, task: pytorch_install.Check) -> set[str]:
        Runtime.torch_devices = pytorch_install.describe_devices(task.result)
        self.report({"INFO"}, f"OpenLRM: PyTorch {task.result['version']} sees {Runtime.torch_devices}")
        return {"FINISHED"}


class OPENLRM_OT_remove_torch(bpy.types.Operator):
    """Remove the PyTorch the add-on installed: back to the bundled one (or Blender's)"""

    bl_idname = "openlrm.remove_torch"
    bl_label = "Remove Installed PyTorch"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.job is None and Runtime.torch_install is None

    def execute(self, context: bpy.types.Context) -> set[str]:
        free_models()
        pytorch_install.remove(pytorch_root())
        torch_in_use.cache_clear()
        Runtime.torch_devices = ""
        self.report({"INFO"}, f"OpenLRM: {torch_in_use()}")
        return {"FINISHED"}


class OPENLRM_OT_cancel_task(bpy.types.Operator):
    """Stop the download or install; nothing is changed"""

    bl_idname = "openlrm.cancel_task"
    bl_label = "Cancel"

    slot: bpy.props.StringProperty(options={"HIDDEN"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        task = getattr(Runtime, self.slot, None)
        if task is not None:
            task.cancel()
        return {"FINISHED"}


def _remove_timer() -> None:
    if Runtime.timer is not None:
        window_manager, timer = Runtime.timer
        Runtime.timer = None
        try:
            window_manager.event_timer_remove(timer)
        except ReferenceError:  # its window manager went with a file load
            pass


def stop_running_job() -> None:
    """Kill the running worker and drop its timer: on file load, add-on disable and quit.
    Killing takes no time, so the interface never waits; nothing reaches the scene."""
    job = Runtime.job
    if job is not None:
        job.cancel(wait=0.5)
    _remove_timer()
    Runtime.job, Runtime.status = None, None


def shut_down() -> None:
    """Add-on disabled, or Blender quitting: no run, idle worker, download or install outlives it."""
    stop_running_job()
    free_models()
    for task in (Runtime.download, Runtime.torch_install):
        if task is not None:
            task.cancel()
    Runtime.download = Runtime.torch_install = None


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    stop_running_job()


classes = (
    OPENLRM_OT_image_to_3d,
    OPENLRM_OT_cancel,
    OPENLRM_OT_free_model,
    OPENLRM_OT_copy_torch_command,
    OPENLRM_OT_download_background_model,
    OPENLRM_OT_install_torch,
    OPENLRM_OT_check_torch,
    OPENLRM_OT_remove_torch,
    OPENLRM_OT_cancel_task,
)
handlers = ((bpy.app.handlers.load_pre, _on_load_pre),)
