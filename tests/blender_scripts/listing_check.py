"""Run in a Python that sees only Blender: follows a file:// extension repository the way a
user does (Get Extensions > Repositories > Add Remote Repository), syncs it and installs
OpenLRM from it.

    python listing_check.py REPOSITORY_DIR    (BLENDER_USER_RESOURCES set by the caller)
Prints one JSON line: which zip Blender chose (its manifest's version range and wheels).
"""

import json
import os
import sys
import tomllib
from pathlib import Path

import bpy

folder = Path(sys.argv[1]).resolve()
preferences = bpy.context.preferences
preferences.system.use_online_access = True  # installing from a remote repository asks for it, file:// too
report = {"blender": list(bpy.app.version), "python": list(sys.version_info[:2])}
report["add"] = sorted(
    bpy.ops.preferences.extension_repo_add(name="OpenLRM", remote_url=folder.as_uri(), type="REMOTE")
)
index = next(i for i, repo in enumerate(preferences.extensions.repos) if repo.name == "OpenLRM")
report["sync"] = sorted(bpy.ops.extensions.repo_sync(repo_index=index))
report["install"] = sorted(
    bpy.ops.extensions.package_install(repo_index=index, pkg_id="openlrm_blender", enable_on_install=True)
)
installed = Path(preferences.extensions.repos[index].directory) / "openlrm_blender"
manifest = tomllib.loads((installed / "blender_manifest.toml").read_text(encoding="utf-8"))
report["manifest"] = {key: manifest.get(key) for key in ("blender_version_min", "blender_version_max", "platforms")}
report["wheels"] = sorted(os.path.basename(path) for path in manifest.get("wheels", []))
report["enabled"] = "bl_ext.OpenLRM.openlrm_blender" in preferences.addons
report["operator"] = hasattr(bpy.types, "OPENLRM_OT_image_to_3d")
print("RESULT " + json.dumps(report))
