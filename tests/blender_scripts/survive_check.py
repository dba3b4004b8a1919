"""Run in a Python with bpy, under whatever limit the caller set (an address-space cap, a
memory cgroup): a scene with an object in it, one Generate that the limit should stop,
then what Blender's process still has and can do.

    python survive_check.py ENGINE ARGUMENTS_JSON OPERATOR_ARGUMENTS_JSON    (the repository on PYTHONPATH)
ENGINE is "module:function" or "-" for the real pipeline. Prints one JSON line.
"""

import json
import sys

import bpy

import addon_utils

target, engine_arguments, call = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
addon_utils.enable("openlrm_blender", default_set=True, handle_error=None)
from openlrm_blender.addon.state import Runtime  # noqa: E402
from openlrm_blender.jobs.job import Engine  # noqa: E402

bpy.ops.mesh.primitive_cube_add()
bpy.context.object.name = "Keep"
before = sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())
Runtime.engine = Engine(None if target == "-" else target, engine_arguments)
report = {}
try:
    report["first"] = sorted(bpy.ops.openlrm.image_to_3d(**call))
except RuntimeError as error:  # the operator's error report
    report["first"] = ["ERROR"]
    report["error"] = str(error).removeprefix("Error: ").strip()
report["scene_unchanged"] = (sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())) == before
report["torch_in_blender"] = "torch" in sys.modules
# Blender is alive and the add-on still works: a second run, in a new worker.
Runtime.engine = Engine("tests.support.fake_engines:slow")
report["second"] = sorted(bpy.ops.openlrm.image_to_3d(**call))
report["objects_after_second"] = sorted(bpy.data.objects.keys())
print("RESULT " + json.dumps(report), flush=True)
