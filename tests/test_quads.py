"""Quads (#27): Generate with Topology Quads in real Blender (``bpy`` from PyPI, background
mode), the remesh in its own Blender process; the objects rendered by Blender and compared
with their triangle twins."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="Blender as a Python module (bpy==4.2.*) is in requirements-dev.txt")

from PIL import Image  # noqa: E402

from openlrm_blender.engine import Options  # noqa: E402
from openlrm_blender.engine.camera import SourceCamera  # noqa: E402
from openlrm_blender.jobs.job import Engine, Job  # noqa: E402
from openlrm_blender.jobs.quads import QuadRequest  # noqa: E402
from tests.support.blender_render import render_scene  # noqa: E402
from tests.support.images import object_with_alpha  # noqa: E402

CAMERA = SourceCamera(1.2, 0.75)  # the ellipsoid (0.8 wide, 0.6 high) fills half the view
BUDGET = 10_000


@pytest.fixture
def scene(addon, tmp_path):
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    image = tmp_path / "photo.png"
    Image.fromarray(object_with_alpha(64)).save(image)
    addon.Runtime.engine = Engine("tests.support.fake_engines:shape", {})
    yield image
    addon.Runtime.engine = Engine()


def generate(image: Path, **arguments) -> bpy.types.Object:
    assert bpy.ops.openlrm.image_to_3d(filepath=str(image), **arguments) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    obj.location = (0.0, 0.0, 0.0)  # in front of the camera, wherever the 3D cursor is
    return obj


def sizes(obj: bpy.types.Object) -> np.ndarray:
    counts = np.empty(len(obj.data.polygons), dtype=np.int32)
    obj.data.polygons.foreach_get("loop_total", counts)
    return counts


def render_alone(obj: bpy.types.Object, others: list, folder: Path, colours: str) -> np.ndarray:
    for other in others:
        other.hide_render = other is not obj
    return render_scene(CAMERA, 256, folder / f"{obj.name}.png", colours=colours)


def assert_looks_like(quads: np.ndarray, triangles: np.ndarray) -> None:
    """The silhouette of the triangle twin (overlap of the covered pixels) and its colours
    (median difference on the pixels both cover)."""
    a, b = quads[..., 3] > 0.5, triangles[..., 3] > 0.5
    overlap = (a & b).sum() / (a | b).sum()
    both = a & b
    difference = np.abs(quads[..., :3][both] - triangles[..., :3][both]).max(axis=1)
    print(f"silhouette overlap {overlap:.4f}, colour difference median {np.median(difference) * 255:.2f}/255")
    assert b.sum() > 256 * 256 // 10, "the object hardly shows"
    assert overlap >= 0.95 and np.median(difference) <= 8 / 255


def assert_quads_at_the_budget(obj: bpy.types.Object, budget: int) -> None:
    counts = sizes(obj)
    print(f"{len(counts):,} faces, {np.mean(counts == 4):.1%} quads")
    assert np.mean(counts == 4) >= 0.95 and abs(len(counts) - budget) <= 0.25 * budget


def test_quads_at_the_budget_with_the_colours_of_their_triangle_twin(scene, tmp_path):
    triangles = generate(scene)
    quads = generate(scene, topology="QUADS", faces=BUDGET)
    assert (sizes(triangles) == 3).all()
    assert_quads_at_the_budget(quads, BUDGET)
    assert quads.data.color_attributes.active_color.name == "Color"
    assert_looks_like(*(render_alone(obj, [triangles, quads], tmp_path, "VERTEX") for obj in (quads, triangles)))


def test_a_textured_run_gives_quads_with_a_new_layout_and_texture(scene, tmp_path):
    arguments = dict(output="TEXTURED", texture_size=1024, faces=BUDGET)
    triangles = generate(scene, **arguments)
    quads = generate(scene, topology="QUADS", **arguments)
    assert_quads_at_the_budget(quads, BUDGET)
    assert len(quads.data.uv_layers) == 1 and len(quads.data.uv_layers[0].data) == len(quads.data.loops)
    node = next(node for node in quads.active_material.node_tree.nodes if node.type == "TEX_IMAGE")
    assert tuple(node.image.size) == (1024, 1024) and node.image.packed_file is not None
    assert_looks_like(*(render_alone(obj, [triangles, quads], tmp_path, "TEXTURE") for obj in (quads, triangles)))


def test_a_shape_quadriflow_refuses_is_said_and_keeps_the_triangles(addon, scene, capfd):
    addon.Runtime.engine = Engine("tests.support.fake_engines:shape", {"flat": True})
    assert bpy.ops.openlrm.image_to_3d(filepath=str(scene), topology="QUADS", faces=2000) == {"FINISHED"}
    warning = next(line for line in capfd.readouterr().out.splitlines() if line.startswith("Warning: OpenLRM"))
    print(warning)
    assert "no quads: QuadriFlow could not" in warning and "the triangles are kept" in warning
    obj = bpy.context.view_layer.objects.active
    assert obj.name == "photo" and (sizes(obj) == 3).all() and len(sizes(obj)) == 2 * 59 * 59


def test_the_sidebar_offers_quads_at_a_budget(addon, scene):
    settings = bpy.context.scene.openlrm
    assert settings.topology == "TRIANGLES" and settings.faces == 50_000
    settings.topology = "QUADS"
    assert settings.faces == 10_000  # the textured triangles' default would take QuadriFlow a minute
    settings.faces = 3000
    settings.topology = "TRIANGLES"
    settings.topology = "QUADS"
    assert settings.faces == 3000  # a budget the user chose stays
    settings.filepath = str(scene)
    bpy.ops.openlrm.image_to_3d()
    assert_quads_at_the_budget(bpy.context.view_layer.objects.active, 3000)
    settings.topology = "TRIANGLES"


def test_a_batch_makes_each_object_quads(addon, scene, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("one", "two"):
        Image.fromarray(object_with_alpha(64)).save(folder / f"{name}.png")
    assert bpy.ops.openlrm.image_to_3d(directory=str(folder), topology="QUADS", faces=2000) == {"FINISHED"}
    made = bpy.data.collections["Image to 3D"].objects
    assert sorted(obj.name for obj in made) == ["one", "two"]
    for obj in made:
        assert_quads_at_the_budget(obj, 2000)


def interactive_run(addon, image: Path, budget: int):
    from openlrm_blender.addon import remesh_command

    options = Options()
    quads = QuadRequest(remesh_command.command(), budget)
    run = addon.Run(
        [(image, "ticked")], lambda source, last: Job(source, options, engine=addon.Runtime.engine, quads=quads), False
    )
    run.job.start()
    return run


def test_interactive_progress_runs_through_the_remesh(addon, scene):
    run = interactive_run(addon, scene, 2000)
    stages, fractions = [], []
    while (outcome := run.tick(bpy.context)) is None:
        status = run.job.poll()
        stages.append(status.stage)
        fractions.append(status.fraction)
        time.sleep(0.01)
    assert outcome[0] == {"FINISHED"} and "quads" in stages and fractions == sorted(fractions)
    assert_quads_at_the_budget(bpy.data.objects["ticked"], 2000)
    assert run.job.poll().result.timings["quads"] > 0


def test_cancel_during_the_remesh_stops_it_and_leaves_the_scene(addon, scene):
    before = set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())
    run = interactive_run(addon, scene, 30_000)  # a minute's work: the cancel comes first
    while run.job.poll().stage != "quads" or run.job._process is None or "QuadriFlow" not in run.job.poll().message:
        assert run.tick(bpy.context) is None
        time.sleep(0.01)
    process = run.job._process.process
    run.job.cancel()
    while (outcome := run.tick(bpy.context)) is None:
        time.sleep(0.01)
    assert outcome == ({"CANCELLED"}, "INFO", "OpenLRM: cancelled")
    assert process.wait() == -signal.SIGKILL  # killed in QuadriFlow, not waited for
    assert (set(bpy.data.objects.keys()), set(bpy.data.meshes.keys())) == before
