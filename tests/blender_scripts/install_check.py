"""Run in a Python that sees only Blender (bpy) and what Blender ships: installs the
extension zip through the extension manager, enables it, presses Generate on the tiny
model, uninstalls.

    python install_check.py ZIP TINY_MODEL_DIR    (BLENDER_USER_RESOURCES set by the caller)
Prints one JSON line with what it found; Generate may fail (no PyTorch in the zip), and
the report says how.
"""

import importlib
import json
import os
import sys

import bpy

zip_path, tiny = sys.argv[1], sys.argv[2]
report = {"blender": list(bpy.app.version), "python": list(sys.version_info[:2])}
report["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True))
report["enabled"] = any(addon.endswith(".openlrm_blender") for addon in bpy.context.preferences.addons.keys())
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
