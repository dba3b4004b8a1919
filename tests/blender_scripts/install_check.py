"""Run in a Python that sees only Blender (bpy) and what Blender ships: installs the
extension zip through the extension manager, runs the operator, uninstalls.

    python install_check.py ZIP TINY_MODEL_DIR    (BLENDER_USER_RESOURCES set by the caller)
Prints one JSON line with what it found.
"""

import json
import os
import sys

import bpy

zip_path, tiny = sys.argv[1], sys.argv[2]
report = {"blender": bpy.app.version_string}
report["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True))

import huggingface_hub  # noqa: E402  (importable only once the extension's wheels are installed)
import mcubes  # noqa: E402
import onnxruntime  # noqa: E402
import PIL  # noqa: E402
import safetensors  # noqa: E402
import torch  # noqa: E402

report["modules"] = {m.__name__: m.__file__ for m in (torch, mcubes, safetensors, onnxruntime, huggingface_hub, PIL)}
report["user_resources"] = os.environ["BLENDER_USER_RESOURCES"]
report["operator"] = sorted(
    bpy.ops.openlrm.image_to_3d(
        filepath=os.path.join(tiny, "input.png"), weights_dir=tiny, input_size=56, resolution=32, recenter=False
    )
)
obj = bpy.context.view_layer.objects.active
report["object"] = {"name": obj.name, "vertices": len(obj.data.vertices), "faces": len(obj.data.polygons)}
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
