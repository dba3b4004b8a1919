"""Run in a Python that sees only Blender (bpy): installs the extension zip (built without
PyTorch), installs a CPU PyTorch from the add-on's own operator, then has a new Blender
process press Generate on the tiny model, then removes that PyTorch.

    python torch_install_check.py ZIP TINY_MODEL_DIR INDEX_URL    (BLENDER_USER_RESOURCES set)
Prints one JSON line.
"""

import json
import os
import subprocess
import sys

import bpy

zip_path, tiny, index_url = sys.argv[1:4]
GENERATE = f"""
import bpy
import addon_utils
addon_utils.enable("bl_ext.user_default.openlrm_blender", default_set=True, handle_error=None)
try:
    print("RESULT", sorted(bpy.ops.openlrm.image_to_3d(filepath={os.path.join(tiny, "input.png")!r},
          weights_dir={tiny!r}, input_size=56, resolution=32, recenter=False)))
except RuntimeError as error:
    print("RESULT", ["ERROR"], str(error).removeprefix("Error: ").splitlines()[0])
"""


def generate_in_a_new_blender() -> list[str]:
    """Output lines of a new Blender process (this Python, this user folder) pressing Generate."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", GENERATE], check=False, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(("RESULT", "OpenLRM:"))]
    return lines or [f"no result (exit {done.returncode}): {done.stderr[-2000:]}"]


report = {}
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
module = next(addon.module for addon in bpy.context.preferences.addons if addon.module.endswith(".openlrm_blender"))
preferences = sys.modules[module + ".addon.preferences"]
report["before"] = preferences.torch_in_use()
bpy.context.preferences.system.use_online_access = False
try:
    bpy.ops.openlrm.install_torch(variant="CPU", index_url=index_url)
except RuntimeError as error:
    report["offline"] = str(error)
bpy.context.preferences.system.use_online_access = True
report["install"] = sorted(bpy.ops.openlrm.install_torch(variant="CPU", index_url=index_url))
report["root"] = str(preferences.pytorch_root())
report["after"] = preferences.torch_in_use()
bpy.ops.wm.save_userpref()  # the new Blender process enables the extension from these preferences
report["new_blender"] = generate_in_a_new_blender()
report["remove"] = sorted(bpy.ops.openlrm.remove_torch())
report["removed"] = preferences.torch_in_use()
report["root_left"] = sorted(os.listdir(report["root"])) if os.path.isdir(report["root"]) else []
report["after_remove"] = generate_in_a_new_blender()
print("RESULT " + json.dumps(report))
