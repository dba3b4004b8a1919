"""Run in a Python that sees only Blender (bpy) and what Blender ships: installs the
extension zip through the extension manager, enables it, presses Generate on the tiny
model, uninstalls.

    python install_check.py ZIP TINY_MODEL_DIR TRELLIS_DIR PAINTED_NPY    (BLENDER_USER_RESOURCES set)
Prints one JSON line with what it found; Generate may fail (no PyTorch in the zip), and
the report says how. Where the model runs, Paint from Photo paints TRELLIS's painting vector's
mesh, imported with Blender's own PLY importer, and its colours go to PAINTED_NPY.
"""

import importlib
import json
import os
import sys
from pathlib import Path

import bpy

import numpy

zip_path, tiny, trellis, painted_npy = sys.argv[1:5]
report = {"blender": list(bpy.app.version), "python": list(sys.version_info[:2])}
report["install"] = sorted(
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
)
report["enabled"] = any(addon.module.endswith(".openlrm_blender") for addon in bpy.context.preferences.addons)
report["registered"] = {
    "operator": hasattr(bpy.types, "OPENLRM_OT_image_to_3d"),
    "panel": hasattr(bpy.types, "OPENLRM_PT_image_to_3d"),
    "scene property": hasattr(bpy.types.Scene, "openlrm"),
}
# Where each dependency comes from (importable only once the extension's wheels are installed).
report["modules"] = {}
for name in ("torch", "safetensors", "onnxruntime", "huggingface_hub", "PIL", "mcubes", "scipy"):
    try:
        report["modules"][name] = importlib.import_module(name).__file__
    except ImportError:
        report["modules"][name] = None

before = sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())
try:
    report["operator"] = sorted(
        bpy.ops.openlrm.image_to_3d(
            filepath=os.path.join(tiny, "input.png"), weights_dir=tiny, input_size=56, resolution=32, recenter=False
        )
    )
    obj = bpy.context.view_layer.objects.active
    report["object"] = {"name": obj.name, "vertices": len(obj.data.vertices), "faces": len(obj.data.polygons)}
except RuntimeError as error:  # the operator's error report
    report["operator"] = ["ERROR"]
    report["error"] = str(error)
    report["scene_unchanged"] = (sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())) == before

# Quads through the installed extension's own remesh process (its modules, its folder's layout).
package = next(name for name in sys.modules if name.endswith(".openlrm_blender"))
quads = importlib.import_module(f"{package}.jobs.quads")
command = importlib.import_module(f"{package}.addon.remesh_command").command()
engine = importlib.import_module(f"{package}.engine")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # NumPy-only shapes; no PyTorch here
from shapes import ellipsoid  # noqa: E402

vertices, faces = ellipsoid((0.4, 0.25, 0.3), 32, 64)
ellipsoid = engine.Mesh(vertices, faces, numpy.full(vertices.shape, 0.5, dtype=numpy.float32))
made = quads.make_quads(
    ellipsoid, quads.QuadRequest(command, 2000), lambda *_: None, engine.CancelToken(), lambda _: None
)
report["quads"] = {"faces": len(made.sizes), "quad_share": made.quad_share, "command": command[0]}
if report.get("operator") == ["FINISHED"]:  # the model runs here: Generate with quads too
    report["quad_operator"] = sorted(
        bpy.ops.openlrm.image_to_3d(
            filepath=os.path.join(tiny, "input.png"),
            weights_dir=tiny,
            input_size=56,
            resolution=32,
            recenter=False,
            topology="QUADS",
            faces=2000,
        )
    )
    obj = bpy.context.view_layer.objects.active
    report["quad_object"] = {
        "faces": len(obj.data.polygons),
        "quads": sum(len(face.vertices) == 4 for face in obj.data.polygons),
    }

    # Paint from Photo through the zip: a mesh as Blender's PLY importer makes it, coloured by TRELLIS.
    bpy.ops.wm.ply_import(filepath=os.path.join(trellis, "paint.ply"))
    painted = bpy.context.view_layer.objects.active
    positions = numpy.empty(len(painted.data.vertices) * 3, dtype=numpy.float32)
    painted.data.vertices.foreach_get("co", positions)
    report["paint"] = sorted(
        bpy.ops.openlrm.paint_from_photo(filepath=os.path.join(trellis, "input.png"), weights_dir=trellis, seed=1234)
    )
    attribute = painted.data.color_attributes.get("Color")
    colours = numpy.empty(len(painted.data.vertices) * 4, dtype=numpy.float32)
    if attribute is not None and attribute.domain == "POINT":
        attribute.data.foreach_get("color_srgb", colours)
        numpy.save(painted_npy, colours.reshape(-1, 4)[:, :3])
    after = numpy.empty_like(positions)
    painted.data.vertices.foreach_get("co", after)
    report["paint_object"] = {
        "vertices": len(painted.data.vertices),
        "faces": len(painted.data.polygons),
        "positions_unchanged": bool((after == positions).all()),
        "attribute": None if attribute is None else [attribute.domain, attribute.data_type],
    }

repos = bpy.context.preferences.extensions.repos
index = next(i for i, repo in enumerate(repos) if repo.module == "user_default")
report["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(repo_index=index, pkg_id="openlrm_blender"))
report["left_registered"] = {
    "operator": hasattr(bpy.types, "OPENLRM_OT_image_to_3d"),
    "panel": hasattr(bpy.types, "OPENLRM_PT_image_to_3d"),
    "scene property": hasattr(bpy.types.Scene, "openlrm"),
    "enabled": any("openlrm_blender" in addon.module for addon in bpy.context.preferences.addons),
}
print("RESULT " + json.dumps(report))
