"""The add-on in real Blender (``bpy`` from PyPI, background mode)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="Blender as a Python module (bpy==4.2.*) is in requirements-dev.txt")
import addon_utils  # noqa: E402  (ships with bpy)
from mathutils import Vector  # noqa: E402

import openlrm_blender  # noqa: E402
from openlrm_blender.engine import Options, missing_torch_message, torch_available  # noqa: E402
from openlrm_blender.jobs.job import Engine, Job  # noqa: E402

# Blender 5.1+ test environments (Python 3.13) have no PyTorch: what needs the model is skipped there.
needs_torch = pytest.mark.skipif(not torch_available(), reason="no PyTorch for this Python")

from tests.conftest import REPO, SHARED, TINY_GRID, TINY_SIZE  # noqa: E402
from tests.support.blender_addon import ADDON  # noqa: E402


@pytest.fixture
def clean_scene(addon):
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    addon.Runtime.engine = Engine()
    yield bpy.context.scene
    addon.Runtime.engine = Engine()


def tiny_call(tiny_dir, **changes) -> dict:
    arguments = dict(
        filepath=str(tiny_dir / "input.png"),
        weights_dir=str(tiny_dir),
        input_size=TINY_SIZE,
        resolution=TINY_GRID,
        recenter=False,
    )
    arguments.update(changes)
    return arguments


def engine_mesh(tiny_dir):
    """The engine's own mesh for the tiny call, computed in this process."""
    from openlrm_blender.engine.pipeline import generate

    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, recenter=False)
    return generate(tiny_dir / "input.png", options).mesh


def registered() -> dict[str, bool]:
    return {
        "scene property": hasattr(bpy.types.Scene, "openlrm"),
        "operator": hasattr(bpy.types, "OPENLRM_OT_image_to_3d"),
        "panel": hasattr(bpy.types, "OPENLRM_PT_image_to_3d"),
        "image list": hasattr(bpy.types, "OPENLRM_UL_images") and hasattr(bpy.types.Image, "openlrm_chosen"),
        "file handler": hasattr(bpy.types, "OPENLRM_FH_image_to_3d"),
        "preferences": ADDON in bpy.context.preferences.addons,
        "load handler": any(getattr(h, "__module__", "").startswith(ADDON) for h in bpy.app.handlers.load_pre),
    }


def test_register_and_unregister_twice():
    for _ in range(2):
        addon_utils.enable(ADDON, default_set=True, handle_error=None)
        assert all(registered().values()), registered()
        addon_utils.disable(ADDON, default_set=True)
        assert not any(registered().values()), registered()


def layout_calls() -> list[tuple[str, str, dict]]:
    """Every UILayout method the sidebar and the preferences call, with their keywords (and
    the keywords' values where they are constants)."""
    calls = []
    for module in ("panel.py", "paint_panel.py", "preferences.py"):
        tree = ast.parse((Path(openlrm_blender.__file__).parent / "addon" / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute):
                    owner = owner.func.value  # layout.row().prop(...)
                if isinstance(owner, ast.Name) and owner.id in ("layout", "column", "row", "box", "header", "body"):
                    keywords = {
                        k.arg: k.value.value if isinstance(k.value, ast.Constant) else None for k in node.keywords
                    }
                    calls.append((module, node.func.attr, keywords))
    return calls


def test_every_layout_call_exists_in_this_blender():
    """Drawing needs a window (none in background mode): check the calls against Blender's RNA."""
    functions = bpy.types.UILayout.bl_rna.functions
    icons = functions["label"].parameters["icon"].enum_items.keys()
    calls = layout_calls()
    assert {"progress", "template_ID", "template_icon", "template_list", "operator", "prop", "box", "panel_prop"} <= {
        name for _, name, _ in calls
    }
    for module, name, keywords in calls:
        assert name in functions, (module, name, bpy.app.version_string)
        assert set(keywords) <= set(functions[name].parameters.keys()), (module, name, keywords)
        assert (keywords.get("icon") or "NONE") in icons, (module, name, keywords)


@needs_torch
def test_headless_operator_matches_the_engine(clean_scene, tiny_dir):
    clean_scene.cursor.location = (1.0, 2.0, 3.0)
    expected = engine_mesh(tiny_dir)
    assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir)) == {"FINISHED"}

    obj = bpy.context.view_layer.objects.active
    assert obj.name == "input" and obj.select_get()
    assert tuple(obj.location) == pytest.approx((1.0, 2.0, 3.0))
    mesh = obj.data
    assert len(mesh.vertices) == len(expected.vertices) and len(mesh.polygons) == len(expected.faces)
    coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    np.testing.assert_allclose(coordinates.reshape(-1, 3), expected.vertices, atol=1e-6)
    corners = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    np.testing.assert_array_equal(corners.reshape(-1, 3), expected.faces)

    attribute = mesh.color_attributes.active_color
    assert attribute.domain == "POINT" and attribute.data_type == "BYTE_COLOR"
    assert mesh.color_attributes.render_color_index == mesh.color_attributes.active_color_index
    colours = np.empty(len(mesh.vertices) * 4, dtype=np.float32)
    attribute.data.foreach_get("color_srgb", colours)
    np.testing.assert_array_equal(np.round(colours.reshape(-1, 4)[:, :3] * 255).astype(np.uint8), expected.colours_u8)

    material = mesh.materials[0]
    links = [
        (link.from_node.bl_idname, link.from_socket.name, link.to_node.bl_idname, link.to_socket.name)
        for link in material.node_tree.links
    ]
    assert ("ShaderNodeVertexColor", "Color", "ShaderNodeBsdfPrincipled", "Base Color") in links
    colour_node = next(node for node in material.node_tree.nodes if node.bl_idname == "ShaderNodeVertexColor")
    assert colour_node.layer_name == attribute.name
    assert all(polygon.use_smooth for polygon in mesh.polygons[:10])


@needs_torch
def test_bad_input_is_reported_and_changes_nothing(clean_scene, tiny_dir, tmp_path):
    before = set(bpy.data.objects.keys())
    with pytest.raises(RuntimeError, match=r"missing\.png: file not found"):
        bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath=str(tmp_path / "missing.png")))
    with pytest.raises(RuntimeError, match="no surface: the density never crosses the threshold"):
        bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, threshold=50.0))
    with pytest.raises(RuntimeError, match="there is no image named 'nothing'"):
        bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath="", image_name="nothing"))
    assert set(bpy.data.objects.keys()) == before
    from openlrm_blender.addon.state import Runtime

    assert "density never crosses" not in Runtime.last_error  # the last error is the last call's
    assert "there is no image named 'nothing'" in Runtime.last_error


@needs_torch
def test_image_datablock_source(clean_scene, tiny_dir):
    image = bpy.data.images.load(str(tiny_dir / "input.png"))
    assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath="", image_name=image.name)) == {"FINISHED"}
    from_file = engine_mesh(tiny_dir)
    assert len(bpy.context.view_layer.objects.active.data.vertices) == len(from_file.vertices)


@needs_torch
def test_saved_and_reloaded_colours(clean_scene, tiny_dir, tmp_path):
    bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir))
    mesh = bpy.context.view_layer.objects.active.data
    before = np.empty(len(mesh.vertices) * 4, dtype=np.float32)
    mesh.color_attributes.active_color.data.foreach_get("color_srgb", before)
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    mesh = bpy.data.objects["input"].data
    after = np.empty(len(mesh.vertices) * 4, dtype=np.float32)
    mesh.color_attributes.active_color.data.foreach_get("color_srgb", after)
    np.testing.assert_array_equal(before, after)
    assert mesh.materials[0].node_tree.nodes.get("Color Attribute") is not None


def test_out_of_range_values_from_python_are_reported_not_clamped(clean_scene, tiny_dir):
    from openlrm_blender.addon.state import Runtime

    before = set(bpy.data.objects.keys())
    for name, value, message in (
        ("resolution", 0, "resolution = 0 is out of range: use 8 to 1024"),
        ("resolution", 2000, "resolution = 2000 is out of range: use 8 to 1024"),
        ("foreground_ratio", 1.5, "foreground_ratio = 1.5 is out of range: use 0.05 to 1"),
        ("camera_distance", -1.0, "camera_distance = -1 is out of range: use 0.1 to 10"),
    ):
        with pytest.raises(RuntimeError, match=re.escape(message)):
            bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, **{name: value}))
        assert Runtime.last_error == message and Runtime.job is None
    assert set(bpy.data.objects.keys()) == before


def test_the_operator_and_the_sidebar_take_the_engines_table(addon):
    """Each setting of options.SETTINGS: the same default and range in the operator (soft
    limits: out-of-range values are reported) and in the sidebar (hard limits)."""
    from openlrm_blender.engine.options import SETTINGS

    operator = bpy.ops.openlrm.image_to_3d.get_rna_type().properties
    sidebar = bpy.types.Scene.bl_rna.properties["openlrm"].fixed_type.properties
    for name, setting in SETTINGS.items():
        default = setting.default if setting.blender_default is None else setting.blender_default
        for properties, low, high in ((operator, "soft_min", "soft_max"), (sidebar, "hard_min", "hard_max")):
            if name not in properties:
                continue
            prop = properties[name]
            if setting.choices:  # a word setting: a menu of the engine's words
                assert [item.identifier for item in prop.enum_items] == list(setting.choices), name
                assert prop.default == setting.default and prop.name == setting.label, name
                continue
            if prop.type == "ENUM":  # the sidebar's texture sizes: a menu within the range
                sizes = [int(item.identifier) for item in prop.enum_items]
                assert prop.default == str(default) and setting.minimum <= min(sizes) <= max(sizes) <= setting.maximum
                continue
            assert prop.default == pytest.approx(default) and prop.name == setting.label, (name, prop.default)
            if setting.minimum is not None:
                limits = (getattr(prop, low), getattr(prop, high))
                assert limits == pytest.approx((setting.minimum, setting.maximum)), (name, limits)
    assert {"foreground_ratio", "resolution", "threshold", "faces", "texture_size", "latent_steps", "view_mode",
            "colours"} <= set(operator.keys())  # fmt: skip
    assert {"foreground_ratio", "resolution", "threshold", "faces", "latent_guidance", "view_mode", "colours"} <= set(
        sidebar.keys()
    )


def test_enabling_imports_neither_pytorch_nor_model_code():
    """A fresh Blender: enabling the add-on stays cheap (PyTorch takes seconds to import)."""
    script = (
        "import json, sys, time, bpy, addon_utils\n"
        "start = time.perf_counter()\n"
        "addon_utils.enable('openlrm_blender', default_set=True, handle_error=None)\n"
        "seconds = time.perf_counter() - start\n"
        "loaded = sorted(m for m in sys.modules"
        " if m == 'torch' or m.startswith(('torch.', 'openlrm_blender.engine.')))\n"
        "print('RESULT ' + json.dumps({'seconds': seconds, 'loaded': loaded,"
        " 'enabled': hasattr(bpy.types, 'OPENLRM_PT_image_to_3d')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    report = json.loads(next(line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")))
    print(f"enabling the add-on took {report['seconds'] * 1000:.0f} ms")
    assert report["enabled"]
    # What the options and the mesh readers need: NumPy only.
    torch_free = {
        "errors", "input", "input.background", "input.read", "input.mesh_file", "input.mesh_size", "input.ply_reader",
        "input.obj_reader", "input.glb_reader", "models", "models.openlrm", "models.openlrm.config",
        "models.registry", "models.encoding", "models.triposg", "models.triposg.config", "models.triposg.work",
        "models.estimate", "models.arithmetic", "models.trellis", "models.trellis.config", "models.trellis.cost",
        "models.config_files", "models.dinov2_config", "models.settings", "options", "progress", "pytorch", "result",
        "surface", "surface.uv", "surface.finish", "surface.bake", "surface.cleanup", "surface.simplify", "geometry",
        "geometry.normals", "geometry.raster",
    }  # fmt: skip
    assert set(report["loaded"]) <= {f"openlrm_blender.engine.{name}" for name in torch_free}, report["loaded"]


@pytest.mark.skipif(torch_available(), reason="PyTorch is here: the Blender 5.1+ test environment has none")
def test_without_pytorch_generate_says_how_to_get_it(clean_scene, tiny_dir):
    from openlrm_blender.addon.preferences import torch_in_use
    from openlrm_blender.addon.state import Runtime

    before = set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())
    with pytest.raises(RuntimeError, match="PyTorch is missing") as raised:
        bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir))
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in str(raised.value)
    assert "Traceback" not in str(raised.value)
    assert (set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())) == before
    assert Runtime.last_error == missing_torch_message() and Runtime.job is None
    assert Runtime.last_error_kind == "PyTorchMissing"  # the sidebar's box knows it by its kind
    assert "the add-on's preferences (PyTorch > Install PyTorch" in Runtime.last_error
    assert "restart Blender" not in Runtime.last_error  # the installer needs no restart
    assert hasattr(bpy.types, "OPENLRM_OT_show_pytorch_preferences")  # the box's button to the one-click install
    assert torch_in_use() == "PyTorch: not installed"
    assert bpy.ops.openlrm.copy_torch_command() == {"FINISHED"}  # the sidebar's button


# --- the interactive path's timer step, driven by hand ------------------------------------


def fake(name: str, **arguments) -> Engine:
    return Engine(f"tests.support.fake_engines:{name}", arguments)


def start_run(addon, tiny_dir, engine: Engine):
    options = Options(weights_dir=tiny_dir)
    run = addon.Run([(tiny_dir / "input.png", "fake")], lambda source, last: Job(source, options, engine=engine), False)
    run.job.start()
    return run


def drive(run, context, cancel_after: int | None = None):
    fractions, ticks = [], 0
    while True:
        outcome = run.tick(context)
        if outcome is not None:
            return outcome, fractions
        fractions.append(run.job.poll().fraction)
        ticks += 1
        if cancel_after is not None and ticks == cancel_after:
            run.job.cancel()
        time.sleep(0.01)


def wait_for_stage(run, stage: str) -> None:
    while run.job.poll().stage != stage:
        assert not run.job.poll().finished, run.job.poll()
        time.sleep(0.01)


def killed_by_us(process) -> bool:
    """The worker ended by our kill (SIGKILL), not by finishing its call."""
    return process.wait() == -signal.SIGKILL


def test_interactive_ticks_show_rising_progress_then_import(clean_scene, addon, tiny_dir):
    run = start_run(addon, tiny_dir, fake("slow"))
    assert addon.Runtime.job is run.job
    outcome, fractions = drive(run, bpy.context)
    assert outcome[0] == {"FINISHED"}
    assert len(set(fractions)) > 3 and fractions == sorted(fractions)
    assert "fake" in bpy.data.objects and addon.Runtime.job is None
    last = run.job.poll()
    assert (last.stage, last.fraction, last.message) == ("import", 1.0, "fake")  # the bar ends full, on the import


def test_interactive_cancel_leaves_the_scene_unchanged(clean_scene, addon, tiny_dir):
    before = set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())
    run = start_run(addon, tiny_dir, fake("slow", steps=200))
    outcome, _ = drive(run, bpy.context, cancel_after=5)
    assert outcome == ({"CANCELLED"}, "INFO", "OpenLRM: cancelled")
    assert (set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())) == before
    assert addon.Runtime.job is None


def test_cancel_acts_at_once_inside_a_long_native_call(clean_scene, addon, tiny_dir):
    """A call that never checks for cancel (a native library's) no longer holds Cancel up:
    the worker process is killed."""
    for stage in ("model", "preprocess", "encode", "mesh"):
        run = start_run(addon, tiny_dir, fake("stuck", stage=stage, seconds=600))
        wait_for_stage(run, stage)
        started = time.monotonic()
        run.job.cancel()
        outcome, _ = drive(run, bpy.context)
        print(f"cancel in {stage}: {(time.monotonic() - started) * 1000:.0f} ms")
        assert outcome == ({"CANCELLED"}, "INFO", "OpenLRM: cancelled")
        assert killed_by_us(run.job._process.process)  # the 600 s call did not run to its end


def test_interactive_engine_error_becomes_a_report(clean_scene, addon, tiny_dir):
    before = set(bpy.data.objects.keys())
    run = start_run(addon, tiny_dir, fake("slow", fail="model.safetensors: not a valid safetensors file"))
    outcome, _ = drive(run, bpy.context)
    assert outcome == ({"CANCELLED"}, "ERROR", "model.safetensors: not a valid safetensors file")
    assert addon.Runtime.last_error == "model.safetensors: not a valid safetensors file"
    assert set(bpy.data.objects.keys()) == before


def test_a_crash_in_the_model_process_leaves_blender_and_the_scene(clean_scene, addon, tiny_dir):
    before = set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())
    outcome, _ = drive(start_run(addon, tiny_dir, fake("crash")), bpy.context)
    assert outcome[:2] == ({"CANCELLED"}, "ERROR")
    assert outcome[2].startswith("the model process stopped unexpectedly (exit status -11)"), outcome
    assert "Blender and the scene are unchanged" in outcome[2] and "Traceback" not in outcome[2]
    assert (set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())) == before
    outcome, _ = drive(start_run(addon, tiny_dir, fake("slow")), bpy.context)  # the next run gets a new worker
    assert outcome[0] == {"FINISHED"}


def test_the_worker_and_its_model_stay_between_runs_when_asked(clean_scene, addon, tiny_dir):
    from openlrm_blender.worker import client

    drive(start_run(addon, tiny_dir, fake("slow")), bpy.context)
    kept = client._idle
    assert kept is not None and kept.alive
    run = start_run(addon, tiny_dir, fake("slow"))
    drive(run, bpy.context)
    assert run.job._process is kept and client._idle is kept
    assert bpy.ops.openlrm.free_model() == {"FINISHED"}
    assert client._idle is None and kept.process.wait(timeout=120) is not None  # its memory is back with the system


def test_one_run_at_a_time(clean_scene, addon, tiny_dir):
    run = start_run(addon, tiny_dir, fake("slow", steps=400))
    try:
        assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir)) == {"CANCELLED"}
    finally:
        run.job.cancel(wait=5)
        drive(run, bpy.context)


def test_file_load_stops_the_worker(clean_scene, addon, tiny_dir, tmp_path):
    run = start_run(addon, tiny_dir, fake("stuck"))
    wait_for_stage(run, "encode")
    path = tmp_path / "empty.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert run.job.cancel_requested and run.job.poll().cancelled
    assert run.job._process.process.wait(timeout=120) is not None
    assert addon.Runtime.job is None


def test_disabling_the_addon_mid_run_ends_the_worker_at_once(clean_scene, addon, tiny_dir):
    run = start_run(addon, tiny_dir, fake("stuck"))
    wait_for_stage(run, "encode")
    started = time.monotonic()
    addon_utils.disable(ADDON, default_set=True)
    print(f"disabling the add-on mid-run took {(time.monotonic() - started) * 1000:.0f} ms")
    try:
        assert run.job.poll().cancelled and killed_by_us(run.job._process.process)
        assert not any(registered().values())
        assert addon.Runtime.job is None and addon.Runtime.ticker is None
    finally:
        addon_utils.enable(ADDON, default_set=True, handle_error=None)


@needs_torch
def test_render_result_source(clean_scene, tiny_dir):
    """A render result has no pixel buffer to read: it is saved once in the main thread."""
    bpy.ops.mesh.primitive_cube_add()
    bpy.ops.object.camera_add(location=(0, -6, 0), rotation=(1.5708, 0, 0))
    clean_scene.camera = bpy.context.object
    clean_scene.render.engine = "CYCLES"
    clean_scene.cycles.samples = 1
    clean_scene.cycles.device = "CPU"
    clean_scene.render.resolution_x = clean_scene.render.resolution_y = 32
    clean_scene.render.resolution_percentage = 100
    bpy.ops.render.render()
    call = tiny_call(tiny_dir, filepath="", image_name="Render Result", remove_background=False, threshold=2.0)
    assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
    assert bpy.context.view_layer.objects.active.name == "Render Result"


@needs_torch
def test_the_pytorch_in_use_is_named(addon, capsys, tiny_dir, clean_scene):
    """A Blender on its own Python's PyTorch (not the bundled one) says so."""
    import torch

    from openlrm_blender.addon.preferences import torch_in_use

    summary = torch_in_use()
    assert f"PyTorch {torch.__version__}" in summary and str(torch.__file__).rsplit("/", 1)[0] in summary
    assert summary.endswith("(Blender's Python)")  # the test venv's torch is not under Blender's extensions
    bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir))
    assert f"OpenLRM: {summary}" in capsys.readouterr().out


def test_the_worker_gets_the_preferences_and_the_image(addon, clean_scene, tiny_dir, tmp_path):
    record = tmp_path / "seen.json"
    preferences = bpy.context.preferences.addons[ADDON].preferences
    addon.Runtime.engine = fake("record_options", path=str(record))
    try:
        preferences.precision = "bfloat16"
        assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, resolution=40)) == {"FINISHED"}
    finally:
        preferences.precision = "float32"
    seen = json.loads(record.read_text())
    assert seen["options"]["dtype"] == "bfloat16" and seen["options"]["resolution"] == 40
    assert seen["options"]["weights_dir"] == str(tiny_dir) and seen["image"] == {"path": str(tiny_dir / "input.png")}
    image = bpy.data.images.load(str(tiny_dir / "input.png"))
    assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath="", image_name=image.name)) == {"FINISHED"}
    assert json.loads(record.read_text())["image"] == {"shape": [image.size[1], image.size[0], 4]}


# --- background removal: the model downloaded on first use, Blender's online access -------


@pytest.fixture
def served_background_model(tmp_path, monkeypatch, model_server):
    """A stand-in u2net on a server on 127.0.0.1, rembg's folder empty, a fresh worker (it
    takes this environment), online access on."""
    from openlrm_blender.worker.client import free_models
    from tests.test_background import darkness_model

    model_server.add("/u2net.onnx", darkness_model(tmp_path / "stand-in.onnx"))
    model_server.add("/u2netp.onnx", darkness_model(tmp_path / "stand-in.onnx"))
    for name in ("U2NET_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.setenv("OPENLRM_BACKGROUND_MODELS_URL", model_server.url)
    monkeypatch.setenv("MODEL_CHECKSUM_DISABLED", "1")  # rembg's switch: the stand-in is not rembg's file
    free_models()
    system = bpy.context.preferences.system
    online = system.use_online_access
    system.use_online_access = True
    photo = tmp_path / "photo.png"
    from PIL import Image

    from tests.support.images import object_on_white

    Image.fromarray(object_on_white(128, (40, 24, 88, 72))).save(photo)
    yield photo, tmp_path / "rembg" / "models"
    system.use_online_access = online
    free_models()


@needs_torch
def test_generate_on_a_photo_downloads_the_background_model(clean_scene, tiny_dir, served_background_model):
    photo, models = served_background_model
    assert bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath=str(photo), recenter=True)) == {"FINISHED"}
    assert bpy.context.view_layer.objects.active.name == "photo"
    assert (models / "u2net" / "u2net.onnx").is_file()


@needs_torch
def test_without_online_access_generate_says_the_way_forward(clean_scene, tiny_dir, served_background_model):
    photo, models = served_background_model
    bpy.context.preferences.system.use_online_access = False
    before = set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())
    with pytest.raises(
        RuntimeError, match=r"u2net is not on this machine and downloads are off: .*Remove Background off"
    ):
        bpy.ops.openlrm.image_to_3d(**tiny_call(tiny_dir, filepath=str(photo)))
    assert (set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())) == before
    assert not models.exists()


def test_download_now_needs_online_access(clean_scene, served_background_model):
    _, models = served_background_model
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match=r"Online access is off"):
        bpy.ops.openlrm.download_background_model(model="u2netp")
    assert not models.exists()


def test_download_now_from_the_preferences(clean_scene, served_background_model):
    _, models = served_background_model
    assert bpy.ops.openlrm.download_background_model(model="u2netp") == {"FINISHED"}
    assert (models / "u2netp" / "u2netp.onnx").is_file()
    from openlrm_blender.engine.input import background

    assert background.find_model("u2netp") == models / "u2netp" / "u2netp.onnx"


@needs_torch
def test_check_names_what_the_pytorch_in_use_sees(addon):
    assert bpy.ops.openlrm.check_torch() == {"FINISHED"}
    assert addon.Runtime.torch_devices.startswith("CPU") and addon.Runtime.torch_check is None


# --- textured output ---------------------------------------------------------------------


@needs_torch
def test_textured_generate_makes_a_uv_mapped_object_with_its_baked_image(clean_scene, tiny_dir):
    before = set(bpy.data.images.keys()), set(bpy.data.materials.keys())
    call = tiny_call(tiny_dir, resolution=48, output="TEXTURED", faces=3000, texture_size=256)
    assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert len(obj.data.polygons) <= 3000 and obj.data.uv_layers.active.name == "UVMap"
    material = obj.active_material
    links = [(link.from_node.bl_idname, link.to_socket.name) for link in material.node_tree.links]
    assert ("ShaderNodeTexImage", "Base Color") in links
    image = next(node for node in material.node_tree.nodes if node.bl_idname == "ShaderNodeTexImage").image
    assert tuple(image.size) == (256, 256) and image.packed_file is not None
    assert image.colorspace_settings.name == "sRGB"
    assert set(bpy.data.images.keys()) - before[0] == {image.name}
    uvs = np.empty(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers.active.data.foreach_get("uv", uvs)
    assert uvs.min() >= 0 and uvs.max() <= 1
    # The surface is cut only in its UV map: no vertex twice, and no open edge along the
    # charts' seams (the engine's mesh, cut into charts, has one on each side of every seam).
    from openlrm_blender.engine.pipeline import generate

    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=48, recenter=False, textured=True,
                      faces=3000, texture_size=256)  # fmt: skip
    cut = generate(tiny_dir / "input.png", options).mesh
    positions = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", positions)
    assert len(np.unique(positions.reshape(-1, 3), axis=0)) == len(obj.data.vertices) < len(cut.vertices)
    bmesh = pytest.importorskip("bmesh")
    surface = bmesh.new()
    surface.from_mesh(obj.data)
    open_in_blender = sum(edge.is_boundary for edge in surface.edges)
    surface.free()

    def open_edges(faces: np.ndarray) -> int:
        edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
        return int((np.unique(edges, axis=0, return_counts=True)[1] == 1).sum())

    welded = np.unique(cut.vertices, axis=0, return_inverse=True)[1].reshape(-1)[cut.faces]
    print(
        f"open edges: {open_in_blender} in Blender, {open_edges(welded)} in the welded surface, "
        f"{open_edges(cut.faces)} cut"
    )
    assert open_in_blender == open_edges(welded) < open_edges(cut.faces) / 2


@needs_torch
def test_a_photo_textured_objects_material_holds_the_photo_texture(clean_scene, tiny_dir):
    """The material's image is the engine's photo-textured bake, which differs from the plain one."""
    from openlrm_blender.engine.pipeline import generate

    def baked_image(**photo) -> np.ndarray:
        call = tiny_call(tiny_dir, resolution=48, output="TEXTURED", faces=3000, texture_size=256, **photo)
        assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
        material = bpy.context.view_layer.objects.active.active_material
        image = next(node for node in material.node_tree.nodes if node.bl_idname == "ShaderNodeTexImage").image
        pixels = np.empty(256 * 256 * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        return np.round(pixels.reshape(256, 256, 4)[::-1, :, :3] * 255)  # Blender's rows run bottom up

    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=48, recenter=False, textured=True,
                      faces=3000, texture_size=256)  # fmt: skip
    engine = generate(tiny_dir / "input.png", options).mesh.texture.astype(np.float32)
    photo, plain = baked_image(), baked_image(photo_texture=False)
    assert np.abs(photo - engine).max() <= 1 and np.abs(plain - engine).mean() > 1.0


def render_mean_colours(objects: list, size: int = 48) -> list[np.ndarray]:
    """Cycles renders of each object alone (the same camera and world light): the mean
    colour of its pixels."""
    scene = bpy.context.scene
    bpy.ops.object.camera_add(location=(0, -5, 0), rotation=(1.5708, 0, 0))
    scene.camera = bpy.context.object
    scene.camera.data.type = "ORTHO"
    scene.camera.data.ortho_scale = 2.5
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 16
    scene.cycles.device = "CPU"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"  # sRGB values in, the same values out
    scene.render.film_transparent = True
    world = bpy.data.worlds.new("even light")
    world.color = (1.0, 1.0, 1.0)
    scene.world = world
    means = []
    for shown in objects:
        for obj in objects:
            obj.hide_render = obj is not shown
        bpy.ops.render.render()
        path = Path(bpy.app.tempdir or "/tmp") / "openlrm-render.png"
        bpy.data.images["Render Result"].save_render(str(path))
        from PIL import Image

        pixels = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float64).reshape(-1, 4)
        surface = pixels[pixels[:, 3] == 255, :3]  # the object's pixels only (the film is transparent)
        assert len(surface) > size * size // 8, f"the object hardly shows ({len(surface)} pixels)"
        means.append(surface.mean(axis=0))
    return means


@needs_torch
def test_a_textured_object_and_its_vertex_colour_twin_look_the_same(clean_scene, tiny_dir, object_model_dir):
    """The colour space of the bake: the same surface, once with its texture and once with
    its vertex colours, rendered alike, gives the same colours (no washed-out or dark bake)."""
    from openlrm_blender.addon import importer
    from openlrm_blender.engine import Mesh
    from openlrm_blender.engine.pipeline import generate

    options = Options(
        weights_dir=object_model_dir, input_size=56, resolution=96, recenter=False, textured=True, texture_size=1024,
        photo_texture=False,  # the bake's colour space alone: the twin has the field's colours only
    )  # fmt: skip
    baked = generate(tiny_dir / "input.png", options).mesh
    textured = importer.add_object(bpy.context, "textured", baked)
    twin = importer.add_object(bpy.context, "twin", Mesh(baked.vertices, baked.faces, baked.colours))
    textured.location = twin.location = (0.0, 0.0, 0.0)  # in front of the camera, wherever the 3D cursor is
    textured_mean, twin_mean = render_mean_colours([textured, twin])
    print(f"rendered mean colour: textured {textured_mean.round(1)}, vertex colours {twin_mean.round(1)}")
    assert np.abs(textured_mean - twin_mean).max() <= 4.0, (textured_mean, twin_mean)


@needs_torch
def test_blenders_gltf_importer_reads_the_glb_where_the_ply_is(clean_scene, tiny_dir, tmp_path):
    from openlrm_blender.engine.cli import main

    arguments = [
        str(tiny_dir / "input.png"),
        "--weights",
        str(tiny_dir),
        "--input-size",
        "56",
        "--resolution",
        "48",
        "--no-recenter",
        "-q",
    ]
    assert main([*arguments, "-o", str(tmp_path / "object.glb"), "--texture-size", "256"]) == 0
    assert main([*arguments, "-o", str(tmp_path / "object.ply")]) == 0
    addon_utils.enable("io_scene_gltf2", default_set=True, handle_error=None)
    boxes = {}
    for name, load in (
        ("glb", lambda: bpy.ops.import_scene.gltf(filepath=str(tmp_path / "object.glb"))),
        ("ply", lambda: bpy.ops.wm.ply_import(filepath=str(tmp_path / "object.ply"))),
    ):
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        assert load() == {"FINISHED"}
        obj = next(obj for obj in bpy.data.objects if obj.type == "MESH")
        corners = np.array([obj.matrix_world @ Vector(corner) for corner in obj.bound_box])
        boxes[name] = corners.min(axis=0), corners.max(axis=0)
    print(f"bounding boxes: glb {boxes['glb']}, ply {boxes['ply']}")
    np.testing.assert_allclose(boxes["glb"][0], boxes["ply"][0], atol=1e-5)  # upright, facing the front view
    np.testing.assert_allclose(boxes["glb"][1], boxes["ply"][1], atol=1e-5)


TRIPOSR_VECTOR = SHARED / "vectors" / "triposr-tiny"


def test_the_sidebar_shows_the_chosen_models_published_settings(addon, clean_scene):
    settings = clean_scene.openlrm
    settings.model = "triposr"
    assert (settings.foreground_ratio, settings.resolution, settings.threshold) == (pytest.approx(0.85), 256, 25.0)
    assert settings.settings_family == "triposr"
    settings.model = "openlrm-obj-small-1.1"
    assert (settings.foreground_ratio, settings.resolution, settings.threshold) == (pytest.approx(0.8), 384, 3.0)
    settings.model = "DEFAULT"


def test_a_run_of_another_family_takes_its_published_settings(addon, clean_scene, tmp_path):
    """Sidebar numbers set for OpenLRM are not handed to a TripoSR run; what the caller gives is."""
    record = tmp_path / "seen.json"
    addon.Runtime.engine = fake("record_options", path=str(record))
    call = dict(filepath=str(TRIPOSR_VECTOR / "input.png"), weights_dir=str(TRIPOSR_VECTOR))
    assert clean_scene.openlrm.settings_family == "openlrm"
    assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
    seen = json.loads(record.read_text())["options"]
    assert (seen["resolution"], seen["threshold"], seen["foreground_ratio"]) == (None, None, None)
    assert bpy.ops.openlrm.image_to_3d(**call, resolution=48) == {"FINISHED"}
    assert json.loads(record.read_text())["options"]["resolution"] == 48


@needs_torch
def test_headless_triposr_from_a_model_folder(clean_scene):
    """The tiny TripoSR in its real file layout: the object is the engine's mesh."""
    meta = json.loads((TRIPOSR_VECTOR / "meta.json").read_text())
    call = dict(
        filepath=str(TRIPOSR_VECTOR / "input.png"), weights_dir=str(TRIPOSR_VECTOR), resolution=meta["grid"],
        threshold=meta["threshold"],
    )  # fmt: skip
    assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
    obj = bpy.context.active_object
    assert len(obj.data.vertices) == meta["vertices"] and len(obj.data.polygons) == meta["faces"]


TRIPOSG_VECTOR = SHARED / "vectors" / "triposg-tiny"


@needs_torch
def test_headless_triposg_makes_a_coloured_object_that_records_how_it_was_made(clean_scene):
    """The tiny TripoSG in its real layout: the published mesh (turned into Blender's frame),
    coloured (no model colours: the photo's), with its model, seed, steps and guidance kept on
    the object, so the same call makes it again."""
    meta = json.loads((TRIPOSG_VECTOR / "meta.json").read_text())
    with np.load(TRIPOSG_VECTOR / "expected.npz") as expected:
        faces = len(expected["mcubes_faces"])
    call = dict(filepath=str(TRIPOSG_VECTOR / "input.png"), weights_dir=str(TRIPOSG_VECTOR), tokens=meta["num_tokens"],
                steps=meta["steps"], seed=meta["seed"], resolution=meta["grid_points_per_axis"],
                device="cpu")  # fmt: skip
    assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
    obj = bpy.context.active_object
    assert len(obj.data.polygons) == faces
    assert obj["openlrm_seed"] == meta["seed"] and obj["openlrm_steps"] == meta["steps"]
    assert obj["openlrm_guidance"] == pytest.approx(7.0) and obj["openlrm_model"] == str(TRIPOSG_VECTOR)
    assert 0.0 <= obj["openlrm_photo_fit"] <= 1.0
    colours = np.empty(len(obj.data.vertices) * 4, dtype=np.float32)
    obj.data.color_attributes["Color"].data.foreach_get("color_srgb", colours)
    assert np.ptp(colours.reshape(-1, 4)[:, :3], axis=0).max() > 0.1  # the photo's colours, not one grey


def test_the_sidebar_offers_a_flow_models_sampling_and_a_new_seed(addon, clean_scene):
    settings = clean_scene.openlrm
    settings.model = "triposg"
    assert (settings.resolution, settings.threshold, settings.settings_family) == (512, 0.0, "triposg")
    assert (settings.steps, settings.guidance, settings.seed) == (50, pytest.approx(7.0), 42)
    seeds = set()
    for _ in range(3):
        assert bpy.ops.openlrm.new_seed() == {"FINISHED"}
        seeds.add(settings.seed)
    assert len(seeds) == 3 and 42 not in seeds  # a new shape each time (a repeat is one in two billion)
    settings.model = "DEFAULT"


def shown_seconds(estimate: str) -> list[float]:
    """The durations a sidebar estimate shows ("about 42 s", "about 80 min"), in seconds."""
    return [
        float(number) * (60 if unit == "min" else 1) for number, unit in re.findall(r"about (\d+) (s|min)\b", estimate)
    ]


@pytest.fixture
def cpu_rate(addon, tmp_path, monkeypatch):
    """The sidebar's estimate with a rate of this machine's kept in ``tmp_path`` (not the
    user's folder); none known until a test sets one."""
    from openlrm_blender.addon import time_estimate
    from openlrm_blender.addon.operators import estimate as measure

    for module in (time_estimate, measure):
        monkeypatch.setattr(module, "pytorch_root", lambda create=False: tmp_path)
    addon.Runtime.matmul_rate, addon.Runtime.rate_looked_for = None, False
    yield addon.Runtime
    addon.Runtime.matmul_rate, addon.Runtime.rate_looked_for = None, False


def test_on_the_cpu_the_sidebar_says_how_long_and_offers_a_draft(clean_scene, cpu_rate):
    """The engine's estimate at the measured rate in the run's precision, for the settings
    Generate sends: the published ones far longer than the draft, each family in its words."""
    from openlrm_blender.addon.time_estimate import cpu_estimate, on_the_cpu
    from openlrm_blender.engine.models import estimate
    from openlrm_blender.engine.models.registry import TRELLIS, TRIPOSG
    from openlrm_blender.jobs.matmul_rate import Rate

    cpu_rate.matmul_rate = Rate({"float32": 150.0, "bfloat16": 345.0}, {"float32": 130.0, "bfloat16": 130.0}, "2.13.0",
                                estimate.cpu_name())  # fmt: skip
    float32_speed, bfloat16_speed = estimate.Speed(150.0, 130.0), estimate.Speed(345.0, 130.0)
    settings = clean_scene.openlrm
    settings.model = "triposg"
    text, pending = cpu_estimate(TRIPOSG, settings, "float32")
    seconds = shown_seconds(text)
    assert not pending and text.startswith("On this CPU about ") and text.endswith(". A GPU takes seconds")
    assert "(50 steps, 512^3)" in text and "a draft of 10 steps at 256^3" in text
    published = {"steps": 50, "guidance": 7.0, "tokens": 2048, "resolution": 512, "colours": "photo"}
    draft = estimate.draft("triposg", published)
    reckoned = [estimate.run_seconds("triposg", run, float32_speed, "float32") for run in (published, draft)]
    assert seconds == pytest.approx(reckoned, abs=30)
    assert seconds[0] > 3 * seconds[1]
    in_bfloat16 = cpu_estimate(TRIPOSG, settings, "bfloat16")[0]
    assert "(50 steps, 512^3, bfloat16)" in in_bfloat16
    assert shown_seconds(in_bfloat16)[0] == pytest.approx(
        estimate.run_seconds("triposg", published, bfloat16_speed, "bfloat16"), abs=30
    )
    assert "float32 is quicker" not in in_bfloat16
    # A PyTorch whose bfloat16 attention crawls (Debian's 2.6 here: 9 GFLOP/s against 200 in
    # float32): the sidebar says float32 is quicker, and how quick.
    cpu_rate.matmul_rate = Rate({"float32": 150.0, "bfloat16": 345.0}, {"float32": 130.0, "bfloat16": 9.0}, "2.13.0",
                                estimate.cpu_name())  # fmt: skip
    slow = cpu_estimate(TRIPOSG, settings, "bfloat16")[0]
    assert shown_seconds(slow)[0] > shown_seconds(in_bfloat16)[0] * 2
    assert shown_seconds(slow)[-1] == pytest.approx(seconds[0], abs=60) and "Here float32 is quicker: about" in slow
    settings.model = "trellis"  # both stages' steps; the sidebar's where set for the family
    settings.latent_steps = 12
    text = cpu_estimate(TRELLIS, settings, "float32")[0]
    assert "(25 + 12 steps)" in text and "a draft of 10 + 10 steps" in text
    settings.steps = 8
    assert "(8 + 12 steps)" in cpu_estimate(TRELLIS, settings, "float32")[0]
    settings.latent_steps = 6  # no more than a draft: none offered
    assert "draft" not in cpu_estimate(TRELLIS, settings, "float32")[0]
    assert on_the_cpu("cpu") and on_the_cpu("auto") and not on_the_cpu("cuda")
    settings.model = "DEFAULT"


def test_until_the_cpu_is_measured_the_estimate_is_pending(clean_scene, cpu_rate, tmp_path):
    """No rate yet: the sidebar says so and offers the measurement; a rate an earlier session
    kept (this PyTorch, this CPU) is read at once; bfloat16 needs its own measurement, and a CPU
    without its arithmetic is said to refuse it."""
    from openlrm_blender.addon.time_estimate import cpu_estimate
    from openlrm_blender.engine.models import estimate
    from openlrm_blender.engine.models.registry import TRIPOSG
    from openlrm_blender.engine.pytorch import torch_found
    from openlrm_blender.jobs import matmul_rate

    settings = clean_scene.openlrm
    text, pending = cpu_estimate(TRIPOSG, settings, "float32")
    assert pending and "pending" in text and not shown_seconds(text)
    cpu_rate.rate_looked_for = False  # a new session, after one that measured
    found = torch_found()
    version = found[0] if found else None
    matmul_rate.save(tmp_path, matmul_rate.Rate({"float32": 150.0}, {"float32": 130.0}, version, estimate.cpu_name()))
    text, pending = cpu_estimate(TRIPOSG, settings, "float32")
    assert not pending and len(shown_seconds(text)) == 2
    text, pending = cpu_estimate(TRIPOSG, settings, "bfloat16")
    assert pending and "bfloat16 speed" in text
    cpu_rate.matmul_rate = matmul_rate.Rate(
        {"float32": 150.0, "bfloat16": None}, {"float32": 130.0, "bfloat16": None}, version, estimate.cpu_name()
    )
    text, pending = cpu_estimate(TRIPOSG, settings, "bfloat16")
    assert not pending and "no bfloat16 arithmetic" in text


@needs_torch
def test_measuring_the_cpu_times_it_in_the_model_process_and_keeps_it(clean_scene, cpu_rate, tmp_path):
    from openlrm_blender.addon.time_estimate import cpu_estimate
    from openlrm_blender.engine.models.registry import TRELLIS
    from openlrm_blender.jobs.matmul_rate import RECORD

    assert bpy.ops.openlrm.measure_cpu() == {"FINISHED"}
    rate = cpu_rate.matmul_rate
    assert rate.gflops["float32"] > 1.0 and (tmp_path / RECORD).is_file()
    assert cpu_rate.rate_measurement is None
    cpu_rate.matmul_rate, cpu_rate.rate_looked_for = None, False  # the next session reads it
    text, pending = cpu_estimate(TRELLIS, clean_scene.openlrm, "float32")
    assert not pending and cpu_rate.matmul_rate == rate and "(25 + 25 steps)" in text


def test_a_local_folder_decides_the_model_the_sidebar_names(addon, clean_scene, tmp_path):
    """With the weights from a folder, the sidebar names the folder's family instead of its
    Model menu (the run takes the folder whatever the menu says), its licence, and its
    published numbers; a folder holding no model says so."""
    preferences = bpy.context.preferences.addons[ADDON].preferences
    settings = clean_scene.openlrm
    settings.model = "triposg"
    try:
        preferences.weights_source, preferences.weights_dir = "FOLDER", str(TRIPOSR_VECTOR)
        line, family = preferences.folder_model()
        assert family.name == "triposr" and line == f"Model: TripoSR, from the folder {TRIPOSR_VECTOR.name}"
        assert preferences.family(settings.model) is family and settings.settings_family == "triposr"
        preferences.weights_dir = str(tmp_path)
        assert preferences.folder_model() == (f"Model folder {tmp_path.name}: no model found in it", None)
    finally:
        preferences.weights_source, preferences.weights_dir = "HUB", ""
        settings.model = "DEFAULT"
    assert preferences.folder_model() is None


# --- several images at once ------------------------------------------------------------


@pytest.fixture
def photo_folder(tmp_path, tiny_dir) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        shutil.copy(tiny_dir / "input.png", folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return folder


def test_a_batch_makes_each_image_an_object_side_by_side_in_one_collection(addon, clean_scene, photo_folder, tmp_path):
    """Blender's import convention (directory + files), one broken file among them: the others
    are made, in one new collection, none overlapping, all by one worker (the model stays loaded)."""
    record = tmp_path / "ran.txt"
    addon.Runtime.engine = fake("reads_image", path=str(record))
    files = [{"name": name} for name in ("a.png", "broken.png", "b.png", "c.png")]
    assert bpy.ops.openlrm.image_to_3d(directory=str(photo_folder), files=files) == {"FINISHED"}
    assert "3 of 4 images made" in addon.Runtime.last_info and "broken.png" in addon.Runtime.last_error
    (collection,) = [c for c in bpy.data.collections if c.name.startswith("Image to 3D")]
    objects = sorted(collection.objects, key=lambda obj: obj.location.x)
    assert [obj.name for obj in objects] == ["a", "b", "c"]
    for left, right in pairwise(objects):
        left_edge = left.location.x + max(v.co.x for v in left.data.vertices)
        assert left_edge < right.location.x + min(v.co.x for v in right.data.vertices)
    workers = {line.split()[0] for line in record.read_text().splitlines()}
    assert len(workers) == 1 and len(record.read_text().splitlines()) == 3


def test_a_folder_alone_means_every_image_in_it(addon, clean_scene, photo_folder, tmp_path):
    addon.Runtime.engine = fake("reads_image", path=str(tmp_path / "ran.txt"))
    assert bpy.ops.openlrm.image_to_3d(directory=str(photo_folder)) == {"FINISHED"}
    assert "3 of 4 images made" in addon.Runtime.last_info


def test_cancel_mid_batch_keeps_the_finished_objects(addon, clean_scene, photo_folder):
    options = Options(weights_dir=photo_folder)
    images = [(photo_folder / f"{name}.png", name) for name in "abc"]
    engine = fake("slow", steps=40, delay=0.02)
    run = addon.Run(images, lambda source, last: Job(source, options, engine=engine), False)
    run.job.start()
    labels, headlines = [], []
    while True:
        outcome = run.tick(bpy.context)
        if outcome is not None:
            break
        labels.append(addon.Runtime.status.label if addon.Runtime.status else "")
        headlines.append(addon.Runtime.status.headline if addon.Runtime.status else "")
        if run.index == 1 and run.job.poll().fraction > 0.3:
            run.job.cancel()
        time.sleep(0.01)
    assert outcome[0] == {"FINISHED"} and "1 of 3 images made" in outcome[2] and "cancelled" in outcome[2]
    assert "a" in bpy.data.objects and "b" not in bpy.data.objects and "c" not in bpy.data.objects
    assert any(label.startswith("image 2 of 3 · ") for label in labels)
    assert "image 2 of 3 · Encoding" in headlines  # the bar's text: short enough for the sidebar
    assert addon.Runtime.job is None


def test_image_files_dropped_on_the_viewport_offer_image_to_3d(addon):
    from types import SimpleNamespace

    handler = bpy.types.OPENLRM_FH_image_to_3d
    assert handler.bl_import_operator == "openlrm.image_to_3d" and ".png" in handler.bl_file_extensions
    assert handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type="VIEW_3D")))
    assert not handler.poll_drop(SimpleNamespace(area=SimpleNamespace(type="IMAGE_EDITOR")))


def test_timers_end_with_their_work_and_with_the_addon(addon):
    """The interactive path's timer (no modal operator): it steps until its work says done,
    an exception of ours ends it, and disabling the add-on removes any still waiting."""
    from openlrm_blender.addon import ticker
    from openlrm_blender.addon.state import TICK_SECONDS

    scenes, failures = [], []
    tick = ticker.every_tick(
        lambda context: scenes.append(context.scene.name) or len(scenes) == 2, None, failures.clear
    )
    assert bpy.app.timers.is_registered(tick) and ticker.running()
    assert (tick(), tick()) == (TICK_SECONDS, None) and scenes == [bpy.context.scene.name] * 2
    assert not ticker.running()
    ticker.stop(tick)  # what Blender does when the function gives None
    broken = ticker.every_tick(lambda context: 1 / 0, None, lambda: failures.append("put back"))
    assert broken() is None and not ticker.running() and failures == ["put back"]
    ticker.stop(broken)
    waiting = ticker.every_tick(lambda context: False, None, failures.clear)
    addon_utils.disable(ADDON, default_set=True)
    try:
        assert not bpy.app.timers.is_registered(waiting)
    finally:
        addon_utils.enable(ADDON, default_set=True, handle_error=None)


def test_the_images_ticked_in_the_sidebar_list_make_a_batch(addon, clean_scene, photo_folder):
    """Source "Images": the file's image datablocks ticked in the list, each its own object."""
    settings = clean_scene.openlrm
    loaded = {name: bpy.data.images.load(str(photo_folder / f"{name}.png")) for name in "abc"}
    try:
        settings.source = "IMAGES"
        with pytest.raises(RuntimeError, match="tick the images to convert in the sidebar's list first"):
            bpy.ops.openlrm.image_to_3d()
        loaded["a"].openlrm_chosen = loaded["c"].openlrm_chosen = True
        addon.Runtime.engine = fake("slow", steps=4)
        before = set(bpy.data.collections)
        assert bpy.ops.openlrm.image_to_3d() == {"FINISHED"}
        (collection,) = set(bpy.data.collections) - before
        assert sorted(obj.name for obj in collection.objects) == ["a", "c"]
        assert "2 of 2 images made" in addon.Runtime.last_info
    finally:
        settings.source = "FILE"
        for image in loaded.values():
            bpy.data.images.remove(image)


def test_a_failed_pytorch_install_leaves_its_error_and_pip_log_for_the_preferences(addon):
    """The same ending on the timer path and the synchronous one (``TaskOperator.conclude``)."""
    from types import SimpleNamespace

    from openlrm_blender.addon.state import Runtime

    install = bpy.types.OPENLRM_OT_install_torch
    Runtime.torch_install = task = SimpleNamespace(error="pip could not install PyTorch", log="line 1\nERROR: no index")
    try:
        assert install.conclude(task) == ("ERROR", "pip could not install PyTorch")
        assert Runtime.torch_install is None
        assert (Runtime.last_torch_error, Runtime.last_torch_log) == (task.error, task.log)
    finally:
        Runtime.last_torch_error = Runtime.last_torch_log = ""
