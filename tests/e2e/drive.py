"""Drives Blender's interface under Xvfb as a user would, from timers (the event loop runs).

Opens the sidebar's "Image to 3D" tab, chooses an image, presses Generate through the
operator's invoke path in the window's context, watches the progress while recording
how regularly the interface's timers fire, screenshots the panel mid-run and the
result in Material Preview, converts a batch of three files (one broken), starts a run
and cancels it midway, checks PyTorch, disables the add-on mid-run, draws the
preferences, and quits mid-run; screenshots the sidebar idle, with Advanced open, with
TripoSG chosen in bfloat16 (its CPU estimate) and during the batch. Writes
/e2e/artifacts/results.json (judged by verdict.py).
"""

import json
import os
import subprocess
import sys
import time
import traceback

import bpy

from mathutils import Vector

sys.path.insert(0, os.path.dirname(__file__))
from processes import running

ADDON = "bl_ext.user_default.openlrm_blender"
ARTIFACTS = "/e2e/artifacts"
TICK = 0.05
# "running": for each run, the times the timer fired while the worker was busy; "idle":
# the times it fired before the first run, the same machine's baseline.
results = {
    "errors": [],
    "running": [],
    "idle": [],
    "idle_with_result": [],
    "progress": [],
    "cancel_progress": [],
    "batch_progress": [],
    "batch_labels": [],
}
BATCH = ("a.png", "broken.png", "b.png")  # /e2e/batch/, made by run.sh
IDLE_SECONDS = 3.0


def view3d():
    """The window, the 3D viewport area, its main region and its sidebar region."""
    window = bpy.context.window_manager.windows[0]
    area = next(area for area in window.screen.areas if area.type == "VIEW_3D")
    main = next(region for region in area.regions if region.type == "WINDOW")
    sidebar = next(region for region in area.regions if region.type == "UI")
    return window, area, main, sidebar


def redraw() -> None:
    window, area, main, _ = view3d()
    with bpy.context.temp_override(window=window, area=area, region=main):
        bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)


def screenshot(name: str) -> subprocess.Popen:
    """The real screen, captured by the X server's client (Blender's own screenshot is black here)."""
    return subprocess.Popen(["import", "-display", ":99", "-window", "root", f"{ARTIFACTS}/{name}.png"])


def runtime():
    return sys.modules[ADDON + ".addon.state"].Runtime


def mesh_objects() -> list[str]:
    return sorted(obj.name for obj in bpy.data.objects if obj.type == "MESH")


def watch_run(progress: list[float], on_progress):
    """Steps while the worker runs: records when the timer fired and each progress value,
    and hands the value to ``on_progress`` (what the scenario does mid-run)."""
    results["running"].append([])
    while runtime().job is not None:
        results["running"][-1].append(time.monotonic())
        status = runtime().status
        if status is not None:
            progress.append(status.fraction)
            on_progress(status.fraction)
        yield


def record_idle(times: list[float]):
    """Steps for a few seconds with nothing running: the baseline for the timer gaps."""
    started = time.monotonic()
    while time.monotonic() - started < IDLE_SECONDS:
        times.append(time.monotonic())
        yield


def steps():
    """The scenario as a generator: each ``yield`` hands control back to the event loop."""
    window, area, main, sidebar = view3d()
    space = area.spaces.active
    space.show_region_ui = True
    bpy.data.objects.remove(bpy.data.objects["Cube"])  # the start-up cube would hide the result
    yield
    redraw()
    sidebar.active_panel_category = "Image to 3D"
    use_object_model()
    settings = bpy.context.scene.openlrm
    settings.source = "FILE"
    settings.filepath = "/e2e/tiny/input.png"
    settings.resolution = 256
    results["tab"] = sidebar.active_panel_category
    results["objects_before"] = mesh_objects()
    yield
    yield from record_idle(results["idle"])
    yield from shoot("sidebar-idle")
    settings.show_advanced = True
    yield from shoot("sidebar-advanced")
    settings.show_advanced = False
    # TripoSG from the Hub, on this CPU in bfloat16: the time estimate says so (a local folder
    # would decide the family itself). Then the object model's folder again.
    preferences = bpy.context.preferences.addons[ADDON].preferences
    preferences.weights_source, preferences.precision = "HUB", "bfloat16"
    settings.model = "triposg"
    bpy.ops.openlrm.measure_cpu()  # the model process times this CPU once (the sidebar's button)
    yield from shoot("sidebar-triposg-bfloat16")
    settings.model, preferences.precision = "DEFAULT", "float32"
    use_object_model()
    settings.resolution = 256

    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        results["invoke"] = sorted(bpy.ops.openlrm.image_to_3d("INVOKE_DEFAULT"))
    shots = []

    def shoot_panel(fraction: float) -> None:
        if fraction > 0.2 and "first_run_at_20" not in results:
            results["first_run_at_20"] = time.monotonic()
        if not shots and fraction > 0.3:
            redraw()
            shots.append(screenshot("panel-progress"))

    yield from watch_run(results["progress"], shoot_panel)
    # What a disable that waited for the run would cost: the rest of a run from 20% on.
    results["run_rest_seconds"] = time.monotonic() - results.get("first_run_at_20", time.monotonic())
    for shot in shots:
        shot.wait()
    results["last_info"], results["last_error"] = runtime().last_info, runtime().last_error
    results["objects_after_run"] = mesh_objects()
    new = [name for name in results["objects_after_run"] if name not in results["objects_before"]]
    if new:
        obj = bpy.data.objects[new[0]]
        results["new_object"] = {
            "name": obj.name,
            "vertices": len(obj.data.vertices),
            "colour_attribute": obj.data.color_attributes.active_color_name,
            "material": obj.active_material.name if obj.active_material else "",
            "selected": obj.select_get(),
        }
        space.shading.type = "MATERIAL"
        with bpy.context.temp_override(window=window, area=area, region=main):
            bpy.ops.view3d.view_selected()
            bpy.ops.view3d.zoom(delta=-2)
        started = time.monotonic()
        while time.monotonic() - started < 3.0 or (
            bpy.app.is_job_running("SHADER_COMPILATION") and time.monotonic() - started < 120.0
        ):
            redraw()
            yield
        screenshot("result-material-preview").wait()
        # Material Preview redraws for seconds per frame in software GL, whatever runs.
        space.shading.type = "SOLID"
        yield from record_idle(results["idle_with_result"])

    # A batch from the file browser's convention: three files, one of them broken.
    settings.resolution = 128
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        results["batch_invoke"] = sorted(bpy.ops.openlrm.image_to_3d(
            "INVOKE_DEFAULT", directory="/e2e/batch/", files=[{"name": name} for name in BATCH]
        ))  # fmt: skip
    batch_shots = []

    def shoot_batch(fraction: float) -> None:
        label = runtime().status.batch
        results["batch_labels"].append(label)
        if not batch_shots and label.startswith(f"image {len(BATCH)} of"):
            redraw()
            batch_shots.append(screenshot("sidebar-batch"))

    yield from watch_run(results["batch_progress"], shoot_batch)
    for shot in batch_shots:
        shot.wait()
    settings.resolution = 256
    collection = bpy.data.collections.get("Image to 3D")
    results["batch"] = {
        "info": runtime().last_info,
        "error": runtime().last_error,
        "objects": {obj.name: x_extent(obj) for obj in (collection.objects if collection else [])},
    }
    # One undo takes the whole batch away, one redo brings it back.
    for step, key in (("undo", "after_batch_undo"), ("redo", "after_batch_redo")):
        with bpy.context.temp_override(window=window, area=area, region=main):
            getattr(bpy.ops.ed, step)()
        yield
        results[key] = mesh_objects()
    settings = bpy.context.scene.openlrm
    # A broken file alone: its error comes from the worker, reported from the timer.
    settings.filepath = "/e2e/batch/broken.png"
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        bpy.ops.openlrm.image_to_3d("INVOKE_DEFAULT")
    while runtime().job is not None:
        yield
    results["broken_error"] = runtime().last_error
    settings.filepath = "/e2e/tiny/input.png"

    results["objects_before_cancel"] = mesh_objects()
    results["meshes_before_cancel"] = len(bpy.data.meshes)
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        bpy.ops.openlrm.image_to_3d("INVOKE_DEFAULT")

    def cancel_midway(fraction: float) -> None:
        if fraction > 0.2 and "cancelled_at" not in results:
            results["cancelled_at"] = fraction
            with bpy.context.temp_override(window=window, area=area, region=sidebar):
                bpy.ops.openlrm.cancel()

    yield from watch_run(results["cancel_progress"], cancel_midway)
    results["cancel_info"] = runtime().last_info
    results["objects_after_cancel"] = mesh_objects()
    results["meshes_after_cancel"] = len(bpy.data.meshes)

    # Preferences › PyTorch › Check, through its timer path: the devices Debian's PyTorch sees.
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        results["check_invoke"] = sorted(bpy.ops.openlrm.check_torch("INVOKE_DEFAULT"))
    while runtime().torch_check is not None:  # the check ends by itself (its probe has a time limit)
        yield
    results["torch_devices"] = runtime().torch_devices

    # A third run, and the add-on disabled midway: the worker must end, the interface not wait.
    # Our own part of the disable (the add-on's unregister) is timed inside it; the rest is
    # Blender's (redrawing the scene under software drawing, for one).
    worker = yield from start_and_reach(window, area, sidebar, 0.2)
    addon = sys.modules[ADDON]
    unregister = addon.unregister

    def timed_unregister() -> None:
        started = time.monotonic()
        try:
            unregister()
        finally:
            results["unregister_seconds"] = time.monotonic() - started

    addon.unregister = timed_unregister
    started = time.monotonic()
    bpy.ops.preferences.addon_disable(module=ADDON)
    results["disable_seconds"] = time.monotonic() - started
    for _ in range(5):
        yield
    results["disable_worker_running"] = running(worker)
    results["objects_after_disable"] = mesh_objects()
    bpy.ops.preferences.addon_enable(module=ADDON)
    use_object_model()  # the preferences went with the add-on
    yield

    # The preferences, drawn for real after the runs (in the 3D view's area, then back).
    area.type = "PREFERENCES"
    bpy.context.preferences.active_section = "ADDONS"
    bpy.context.window_manager.addon_search = "OpenLRM"  # ours alone in the list
    bpy.ops.preferences.addon_expand(module=ADDON)
    yield from shoot("preferences", frames=10)
    region = next(region for region in area.regions if region.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        for _ in range(2):  # on to the PyTorch and background-model rows
            bpy.ops.view2d.scroll_down(page=True)
    yield from shoot("preferences-pytorch", frames=10)
    results["preferences_drawn"] = True
    area.type = "VIEW_3D"
    window, area, main, sidebar = view3d()
    yield

    # A fourth run, and Blender quits midway (tick() quits when the scenario ends): verdict.py
    # checks, after Blender, that this worker went with it.
    results["quit_worker"] = yield from start_and_reach(window, area, sidebar, 0.2)


def shoot(name: str, frames: int = 3):
    """A screenshot once the screen has been redrawn a few times over (steps)."""
    for _ in range(frames):
        window = bpy.context.window_manager.windows[0]
        with bpy.context.temp_override(window=window, area=window.screen.areas[0]):
            bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
        yield
    screenshot(name).wait()


def x_extent(obj) -> list[float]:
    """Where the object lies along X in the world: its bounding box's two ends."""
    xs = [(obj.matrix_world @ Vector(corner)).x for corner in obj.bound_box]
    return [min(xs), max(xs)]


def use_object_model() -> None:
    preferences = bpy.context.preferences.addons[ADDON].preferences
    preferences.weights_source = "FOLDER"
    preferences.weights_dir = "/e2e/object"


def start_and_reach(window, area, sidebar, fraction: float):
    """Presses Generate and steps until the run is past ``fraction``; gives the worker's id."""
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        bpy.ops.openlrm.image_to_3d("INVOKE_DEFAULT")
    while runtime().job is not None and runtime().status.fraction < fraction:
        yield
    if runtime().job is None:
        raise RuntimeError(f"the run ended before {fraction:.0%}: {runtime().last_error or runtime().last_info}")
    return runtime().job._process.process.pid


scenario = steps()


def tick():
    """The timer: one step of the scenario; the gaps between calls show the interface answering."""
    try:
        next(scenario)
        return TICK
    except StopIteration:
        pass
    except Exception:  # noqa: BLE001 (every failure is recorded for verdict.py, and Blender quits)
        results["errors"].append(traceback.format_exc())
    with open(f"{ARTIFACTS}/results.json", "w") as out:
        json.dump(results, out, indent=1)
    bpy.ops.wm.quit_blender()
    return None


bpy.app.timers.register(tick, first_interval=2.0)
