"""Paint from Photo, several photos of one object, and TripoSG's colours from TRELLIS, in real
Blender (``bpy`` from PyPI, background mode): the model's paint (the tiny TRELLIS) against the
command line's, and the add-on's own part (progress, cancel, words, undo, materials) with a
stand-in engine."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="Blender as a Python module (bpy==4.2.*) is in requirements-dev.txt")

from openlrm_blender.engine import torch_available  # noqa: E402
from openlrm_blender.engine.camera import SourceCamera  # noqa: E402
from openlrm_blender.jobs.job import Engine, Job  # noqa: E402
from tests.conftest import SHARED  # noqa: E402
from tests.support.blender_addon import ADDON  # noqa: E402
from tests.support.blender_render import render_scene  # noqa: E402

needs_torch = pytest.mark.skipif(not torch_available(), reason="no PyTorch for this Python")

TRELLIS_VECTOR = SHARED / "vectors" / "trellis-tiny"
PHOTO = TRELLIS_VECTOR / "input.png"
CAMERA = SourceCamera(2.2, 0.75)  # the painted mesh (1.6 high) fills about half the view
GREY = 0.8  # Workbench's colour for an object whose colours it is not shown


@pytest.fixture
def scene(addon):
    """An empty scene, the real engine, nothing selected; the preferences as they were after."""
    for collection in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.images):
        for item in list(collection):
            collection.remove(item)
    addon.Runtime.engine = Engine()
    preferences = bpy.context.preferences.addons[ADDON].preferences
    saved = {name: getattr(preferences, name) for name in ("painter_dir", "cache_dir", "weights_source")}
    yield bpy.context.scene
    addon.Runtime.engine = Engine()
    for name, value in saved.items():
        setattr(preferences, name, value)
    settings = bpy.context.scene.openlrm  # looked up again: an undo replaces the scene's memory
    settings.output, settings.source, settings.one_object, settings.model = "VERTEX_COLOURS", "FILE", False, "DEFAULT"


def fake(name: str, **arguments) -> Engine:
    return Engine(f"tests.support.fake_engines:{name}", arguments)


def imported_ply() -> bpy.types.Object:
    """The vector's mesh as Blender's own PLY importer reads it: selected and active."""
    assert bpy.ops.wm.ply_import(filepath=str(TRELLIS_VECTOR / "paint.ply")) == {"FINISHED"}
    return bpy.context.view_layer.objects.active


def vertices_of(obj: bpy.types.Object) -> np.ndarray:
    positions = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", positions)
    return positions.reshape(-1, 3)


def corners_of(obj: bpy.types.Object) -> np.ndarray:
    corners = np.empty(len(obj.data.loops), dtype=np.int32)
    obj.data.loops.foreach_get("vertex_index", corners)
    return corners


def colours_of(obj: bpy.types.Object) -> np.ndarray:
    """The paint's 8-bit sRGB colours, as the attribute holds them."""
    attribute = obj.data.color_attributes["Color"]
    rgba = np.empty(len(obj.data.vertices) * 4, dtype=np.float32)
    attribute.data.foreach_get("color_srgb", rgba)
    return np.round(rgba.reshape(-1, 4)[:, :3] * 255).astype(np.int32)


def select_only(*objects: bpy.types.Object) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj in objects)
    bpy.context.view_layer.objects.active = objects[0] if objects else None


def object_pixels(pixels: np.ndarray) -> np.ndarray:
    """The RGB of the pixels the object covers (the film is transparent)."""
    return pixels[pixels[..., 3] == 1.0][:, :3]


def base_colour_source(material: bpy.types.Material) -> bpy.types.ShaderNode | None:
    shader = next(node for node in material.node_tree.nodes if node.type == "BSDF_PRINCIPLED")
    links = shader.inputs["Base Color"].links
    return links[0].from_node if links else None


@pytest.fixture(scope="module")
def command_line_colours(tmp_path_factory) -> np.ndarray:
    """The command line's paint of the vector's mesh, 8-bit sRGB as its PLY holds them."""
    pytest.importorskip("torch")
    from plyfile import PlyData

    from openlrm_blender.engine.cli import main

    out = tmp_path_factory.mktemp("cli") / "out.ply"
    arguments = [str(PHOTO), "-o", str(out), "--weights", str(TRELLIS_VECTOR), "--seed", "1234", "--no-photo-texture"]
    assert main([*arguments, "--paint", str(TRELLIS_VECTOR / "paint.ply"), "-q"]) == 0
    vertex = PlyData.read(str(out))["vertex"]
    return np.stack([vertex[channel] for channel in ("red", "green", "blue")], axis=1).astype(np.int32)


@needs_torch
def test_headless_paint_is_the_command_lines_and_shows_in_a_render(scene, command_line_colours, tmp_path):
    """The interface the checks use: the active object (Blender's PLY import) painted with the
    tiny TRELLIS and seed 1234 has the command line's colours, its vertices and faces kept; a
    Workbench render of it shows them."""
    obj = imported_ply()
    before_vertices, before_corners = vertices_of(obj), corners_of(obj)
    call = dict(filepath=str(PHOTO), weights_dir=str(TRELLIS_VECTOR), seed=1234)
    assert bpy.ops.openlrm.paint_from_photo(**call) == {"FINISHED"}

    np.testing.assert_array_equal(vertices_of(obj), before_vertices)
    np.testing.assert_array_equal(corners_of(obj), before_corners)
    attribute = obj.data.color_attributes.active_color
    assert (attribute.name, attribute.domain, attribute.data_type) == ("Color", "POINT", "BYTE_COLOR")
    assert obj.data.color_attributes.render_color_index == obj.data.color_attributes.active_color_index
    difference = np.abs(colours_of(obj) - command_line_colours)
    print(f"painted in Blender against the command line: largest difference {difference.max()} of 255")
    assert difference.max() <= 2
    source = base_colour_source(obj.active_material)
    assert source.bl_idname == "ShaderNodeVertexColor" and source.layer_name == "Color"

    obj.location = (0.0, 0.0, 0.0)
    pixels = render_scene(CAMERA, 256, tmp_path / "painted.png", colours="VERTEX")
    shutil.copy(tmp_path / "painted.png", "/tmp/openlrm-painted-vertex-colours.png")
    seen = object_pixels(pixels)
    painted = colours_of(obj).mean(axis=0) / 255
    print(f"rendered: {len(seen)} pixels, mean {seen.mean(axis=0).round(3)}; the paint's mean {painted.round(3)}")
    assert len(seen) > 256 * 256 // 10  # the object fills a good part of the view
    assert np.abs(seen.mean(axis=0) - GREY).max() > 0.1  # not Workbench's grey: the paint shows
    assert np.abs(seen.mean(axis=0) - painted).max() < 0.08  # its colours as painted (sRGB as stored)
    assert seen.std(axis=0).max() > 0.05  # and they vary over the object


@needs_torch
def test_textured_paint_bakes_onto_new_uvs_and_looks_like_its_vertex_colours(scene, tmp_path):
    """A mesh without UVs gets Smart UV Project's, the texture is baked for them, packed and
    shown by the material; rendered, the texture looks as the same paint's vertex colours do."""
    obj = imported_ply()
    before_vertices = vertices_of(obj)
    assert not obj.data.uv_layers
    call = dict(filepath=str(PHOTO), weights_dir=str(TRELLIS_VECTOR), seed=1234, output="TEXTURED", texture_size=256)
    assert bpy.ops.openlrm.paint_from_photo(**call) == {"FINISHED"}
    np.testing.assert_array_equal(vertices_of(obj), before_vertices)
    assert obj.data.uv_layers.active.name == "UVMap"
    uvs = np.empty(len(obj.data.loops) * 2, dtype=np.float32)
    obj.data.uv_layers.active.data.foreach_get("uv", uvs)
    assert uvs.min() >= 0.0 and uvs.max() <= 1.0 and np.ptp(uvs) > 0.9
    texture = base_colour_source(obj.active_material)
    assert texture.bl_idname == "ShaderNodeTexImage" and texture.image.packed_file is not None
    assert tuple(texture.image.size) == (256, 256)
    assert texture.inputs["Vector"].links[0].from_node.uv_map == "UVMap"

    obj.location = (0.0, 0.0, 0.0)
    as_texture = object_pixels(render_scene(CAMERA, 256, tmp_path / "texture.png", colours="TEXTURE"))
    as_vertices = object_pixels(render_scene(CAMERA, 256, tmp_path / "vertices.png", colours="VERTEX"))
    shutil.copy(tmp_path / "texture.png", "/tmp/openlrm-painted-texture.png")
    means = as_texture.mean(axis=0), as_vertices.mean(axis=0)
    print(f"rendered mean: texture {means[0].round(3)}, vertex colours {means[1].round(3)}")
    assert np.abs(as_texture.mean(axis=0) - GREY).max() > 0.1
    assert np.abs(as_texture.mean(axis=0) - as_vertices.mean(axis=0)).max() < 0.04


def drive(run, cancel_when=lambda fraction, text: False) -> list[tuple[float, str]]:
    """The interactive path's timer step by hand, to its end (Cancel pressed once the bar's
    value and text meet ``cancel_when``); the bar's values and texts."""
    from openlrm_blender.addon.operators.engine_run import timer_step
    from openlrm_blender.addon.state import Runtime

    step, shown = timer_step(run, "Paint from Photo"), []
    while not step(bpy.context):
        if Runtime.status is not None:
            shown.append((Runtime.status.fraction, Runtime.status.headline))
            if cancel_when(*shown[-1]):
                run.job.cancel()
        time.sleep(0.01)
    return shown


def paint_run(addon, engine: Engine, textured: bool = False):
    """What Paint from Photo starts for the selected objects, with ``engine`` in the worker."""
    from openlrm_blender.addon import painting
    from openlrm_blender.addon.paint_run import PaintRun
    from openlrm_blender.engine import Options

    options = Options(textured=textured, texture_size=64)
    targets = [painting.paint_target(bpy.context, obj, textured) for obj in painting.objects_to_paint(bpy.context)]
    run = PaintRun(targets, lambda target, last: Job(PHOTO, options, engine=engine, paint=target.mesh))
    run.job.start()
    return run


def two_objects() -> tuple[bpy.types.Object, bpy.types.Object]:
    """A cube turned on its side, scaled and moved, and a monkey (with its UVs), both selected."""
    bpy.ops.mesh.primitive_cube_add(location=(5.0, 0.0, 0.0), rotation=(np.pi / 2, 0.0, 0.0), scale=(2.0, 1.0, 1.0))
    cube = bpy.context.active_object
    bpy.ops.mesh.primitive_monkey_add(location=(-3.0, 0.0, 0.0))
    monkey = bpy.context.active_object
    select_only(cube, monkey)
    return cube, monkey


def test_interactive_paint_shows_progress_and_paints_every_object_upright(addon, scene, tmp_path):
    """Each object is sent turned and scaled as it stands in the world (not moved), painted in
    turn on one bar, and coloured only once all are back; one undo takes all the paint away."""
    from tests.support.fake_engines import shape_colours

    cube, monkey = two_objects()
    bpy.ops.ed.undo_push(message="before the paint")  # what the operator's own undo step holds
    record = tmp_path / "seen.json"
    run = paint_run(addon, fake("paints", steps=8, delay=0.02, path=str(record)))
    shown = drive(run)
    fractions = [fraction for fraction, _ in shown]
    assert fractions == sorted(fractions) and len(set(fractions)) > 4
    assert {"object 1 of 2", "object 2 of 2"} <= {text.split(" · ")[0] for _, text in shown}
    assert addon.Runtime.job is None and addon.Runtime.last_info == "Painted Cube, Suzanne"

    sent = np.array(json.loads(record.read_text())["vertices"])  # the last object's: the monkey, not moved
    np.testing.assert_allclose(sent, vertices_of(monkey), atol=1e-6)
    turned = vertices_of(cube).astype(np.float64) @ np.array(cube.matrix_world)[:3, :3].T
    expected = np.round(shape_colours(turned.astype(np.float32)) * 255)
    assert np.abs(colours_of(cube) - expected).max() <= 1  # coloured where it stands: upright, twice as wide
    assert np.ptp(turned[:, 0]) == pytest.approx(4.0) and np.ptp(turned[:, 2]) == pytest.approx(2.0)

    bpy.ops.ed.undo()
    cube, monkey = bpy.data.objects["Cube"], bpy.data.objects["Suzanne"]
    assert "Color" not in cube.data.color_attributes and "Color" not in monkey.data.color_attributes
    assert not cube.material_slots or cube.active_material is None


def test_cancel_midway_leaves_every_object_as_it_was(addon, scene):
    """Cancelled while the second object is painted: the first one's paint, back already, is
    not written either; no UVs, material or image is left from the run."""
    cube, monkey = two_objects()
    material = bpy.data.materials.new("Own")
    monkey.data.materials.append(material)
    cube.data.uv_layers.remove(cube.data.uv_layers["UVMap"])  # no UVs: Smart UV Project makes some for the texture
    before = (set(bpy.data.materials.keys()), set(bpy.data.images.keys()), set(bpy.data.meshes.keys()))
    uv_maps = monkey.data.uv_layers.keys()
    run = paint_run(addon, fake("paints", steps=40, delay=0.02), textured=True)
    shown = drive(run, cancel_when=lambda fraction, text: text.startswith("object 2 of 2") and fraction > 0.6)
    assert shown[-1][0] < 1.0 and addon.Runtime.job is None
    assert addon.Runtime.last_info == "Cancelled: nothing was painted"
    assert (set(bpy.data.materials.keys()), set(bpy.data.images.keys()), set(bpy.data.meshes.keys())) == before
    assert not cube.data.uv_layers and monkey.data.uv_layers.keys() == uv_maps
    assert not cube.data.color_attributes and not monkey.data.color_attributes
    assert [slot.material for slot in monkey.material_slots] == [material]
    assert {obj.name for obj in bpy.context.selected_objects} == {"Cube", "Suzanne"}  # the selection put back


def test_bad_input_is_said_in_words_and_changes_nothing(addon, scene, tmp_path, tiny_dir, monkeypatch):
    from openlrm_blender.engine.input import mesh_size

    addon.Runtime.engine = fake("paints")
    call = dict(filepath=str(PHOTO), weights_dir=str(TRELLIS_VECTOR))
    obj = imported_ply()
    points = bpy.data.objects.new("Points", bpy.data.meshes.new("Points"))
    points.data.vertices.add(3)
    bpy.context.collection.objects.link(points)
    cases = [
        ((), {}, "select the mesh objects to paint first"),
        ((points,), {}, "Points: the mesh has no faces: painting needs a surface"),
        ((obj,), dict(filepath=str(tmp_path / "missing.png")), r"missing\.png: file not found; nothing was painted"),
        ((obj,), dict(weights_dir=str(tiny_dir)), "the model folder of OpenLRM v1.1; painting needs TRELLIS's"),
        ((obj,), dict(weights_dir=str(tmp_path)), "not a model folder"),
    ]
    for selected, changes, message in cases:
        select_only(*selected)
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.openlrm.paint_from_photo(**(call | changes))
        assert addon.Runtime.job is None and re.search(message, addon.Runtime.last_error), message
    monkeypatch.setattr(mesh_size, "MAX_TRIANGLES", 1000)
    select_only(obj)
    with pytest.raises(RuntimeError, match=r"paint: the mesh has 8,328 faces, more than the limit of 1,000"):
        bpy.ops.openlrm.paint_from_photo(**call)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        with pytest.raises(RuntimeError, match="Paint from Photo works in Object Mode"):
            bpy.ops.openlrm.paint_from_photo(**call)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
    assert not obj.data.color_attributes and not bpy.data.materials and not bpy.data.images


def material_with_nodes(name: str) -> bpy.types.Material:
    """A new material as the interface makes one: a Principled BSDF with a plain base colour."""
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):  # from 5.0 every material has its node tree
        material.use_nodes = True
    return material


def test_the_paint_is_shown_by_the_objects_material_where_that_changes_nothing_else(addon, scene):
    """No material: one of its own. Its own material with a plain base colour: the paint wired
    in (again on a second paint, not twice). A material other objects share: kept, and said."""
    addon.Runtime.engine = fake("paints")
    call = dict(filepath=str(PHOTO), weights_dir=str(TRELLIS_VECTOR))
    bpy.ops.mesh.primitive_cube_add()
    own = bpy.context.active_object
    own.data.materials.append(material_with_nodes("Plain"))
    for _ in range(2):
        assert bpy.ops.openlrm.paint_from_photo(**call) == {"FINISHED"}
    nodes = own.active_material.node_tree.nodes
    assert base_colour_source(own.active_material).bl_idname == "ShaderNodeVertexColor"
    assert sum(node.bl_idname == "ShaderNodeVertexColor" for node in nodes) == 1

    bpy.ops.mesh.primitive_cube_add(location=(3, 0, 0))
    shared = bpy.context.active_object
    shared.data.materials.append(material_with_nodes("Shared"))
    own.data.materials.append(shared.active_material)
    assert bpy.ops.openlrm.paint_from_photo(**call) == {"FINISHED"}
    assert "Color" in shared.data.color_attributes and base_colour_source(shared.active_material) is None
    assert "the material 'Shared' kept as it was (shared" in addon.Runtime.last_info


def test_several_photos_of_one_object_make_one_object_with_trellis(addon, scene, tmp_path, tiny_dir):
    """The sidebar's Images with Views of One Object: one object from every ticked image (the
    first the main photo) where the model is TRELLIS; one each where it takes one photo."""
    record = tmp_path / "seen.json"
    addon.Runtime.engine = fake("record_views", path=str(record))
    settings = scene.openlrm
    images = [bpy.data.images.load(str(TRELLIS_VECTOR / name)) for name in ("input.png", "view1.png", "view2.png")]
    for image in images:
        image.openlrm_chosen = True
    settings.source, settings.one_object = "IMAGES", True
    try:
        assert bpy.ops.openlrm.image_to_3d(weights_dir=str(TRELLIS_VECTOR)) == {"FINISHED"}
        assert [obj.name for obj in bpy.data.objects] == ["input"]
        assert json.loads(record.read_text())["photos"] == [[image.size[1], image.size[0], 4] for image in images]
        assert bpy.ops.openlrm.image_to_3d(weights_dir=str(tiny_dir)) == {"FINISHED"}  # OpenLRM: one photo each
        assert sorted(obj.name for obj in bpy.data.objects) == ["input", "input.001", "view1", "view2"]
    finally:
        for image in images:
            bpy.data.images.remove(image)


def test_the_worker_gets_several_photos_as_paths_and_pixels(tmp_path):
    """Views travel to the worker as files or as pixels, in their order, after the main photo."""
    from openlrm_blender.engine import Options

    record = tmp_path / "seen.json"
    pixels = np.random.default_rng(0).random((30, 20, 4)).astype(np.float32)
    views = (pixels, TRELLIS_VECTOR / "view2.png")
    job = Job(PHOTO, Options(), engine=fake("record_views", path=str(record)), keep_worker=False, views=views)
    job.run()
    assert job.poll().result is not None
    assert json.loads(record.read_text())["photos"] == [str(PHOTO), [30, 20, 4], str(TRELLIS_VECTOR / "view2.png")]


@needs_torch
def test_a_model_of_one_photo_refuses_several_in_words(addon, scene, tmp_path, tiny_dir):
    files = [{"name": name} for name in ("input.png", "view1.png")]
    words = "OpenLRM v1.1 takes one photo: several photos of one object need TRELLIS"
    with pytest.raises(RuntimeError, match=re.escape(words)):
        bpy.ops.openlrm.image_to_3d(directory=str(TRELLIS_VECTOR), files=files, weights_dir=str(tiny_dir),
                                    one_object=True)  # fmt: skip
    assert not bpy.data.objects


def hub_cache_with_trellis(folder: Path) -> Path:
    """A Hugging Face cache holding TRELLIS's pipeline.json, as a download leaves it."""
    repository = folder / "models--microsoft--TRELLIS-image-large"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text("0" * 40)
    (repository / "snapshots" / ("0" * 40)).mkdir(parents=True)
    shutil.copy(TRELLIS_VECTOR / "pipeline.json", repository / "snapshots" / ("0" * 40) / "pipeline.json")
    return folder


def test_triposg_takes_trellis_colours_only_where_trellis_is_here(addon, scene, tmp_path):
    """The sidebar's Colours: TRELLIS where its folder is set or the Hub cache holds it, and
    the run is told where; else the photo's, and the sidebar says why."""
    record = tmp_path / "seen.json"
    addon.Runtime.engine = fake("record_options", path=str(record))
    preferences = bpy.context.preferences.addons[ADDON].preferences
    scene.openlrm.model, scene.openlrm.colours = "triposg", "trellis"
    preferences.weights_source, preferences.painter_dir = "HUB", ""
    call = dict(filepath=str(PHOTO))

    def seen() -> tuple[str, str | None]:
        assert bpy.ops.openlrm.image_to_3d(**call) == {"FINISHED"}
        options = json.loads(record.read_text())["options"]
        return options["colours"], options["painter_weights"]

    preferences.cache_dir = str(tmp_path / "empty cache")
    assert preferences.painter_missing().startswith("TRELLIS is not on this machine")
    assert seen() == ("photo", None)
    preferences.cache_dir = str(hub_cache_with_trellis(tmp_path / "cache"))
    assert preferences.painter_missing() == "" and seen() == ("trellis", None)  # TRELLIS from the Hub cache
    assert bpy.context.active_object["openlrm_colours"] == "trellis"
    preferences.cache_dir, preferences.painter_dir = str(tmp_path / "empty cache"), str(TRELLIS_VECTOR)
    assert preferences.painter_missing() == "" and seen() == ("trellis", str(TRELLIS_VECTOR))
    preferences.painter_dir = str(SHARED / "vectors" / "triposg-tiny")
    assert "TripoSG's, not TRELLIS's" in preferences.painter_missing() and seen()[0] == "photo"


def test_the_sidebar_offers_trellis_with_its_size_licence_and_settings(addon, scene):
    from openlrm_blender.addon import panel
    from openlrm_blender.addon.properties import MODEL_ITEMS
    from openlrm_blender.engine.models.registry import TRELLIS, TRIPOSR

    (item,) = [item for item in MODEL_ITEMS if item[0] == "trellis"]
    assert item[1] == "TRELLIS" and "4.2 GB" in item[2] and TRELLIS.licence in item[2]
    settings = scene.openlrm
    settings.model = "trellis"
    assert settings.settings_family == "trellis"
    assert (settings.steps, settings.guidance, settings.latent_steps, settings.latent_guidance) == (
        25, pytest.approx(7.5), 25, pytest.approx(3.0),
    )  # fmt: skip
    assert [name for name in panel.ADVANCED if name in TRELLIS.uses] == [
        "steps", "guidance", "latent_steps", "latent_guidance", "seed", "view_mode",
    ]  # fmt: skip
    assert [name for name in panel.ADVANCED if name in TRIPOSR.uses] == [
        "recenter", "foreground_ratio", "resolution", "threshold",
    ]  # fmt: skip
    assert [item.identifier for item in settings.bl_rna.properties["view_mode"].enum_items] == [
        "stochastic", "multidiffusion",
    ]  # fmt: skip
