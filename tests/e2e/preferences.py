"""Run once after installing: the extension is enabled; no splash screen over the interface."""

import sys

import bpy

ADDON = "bl_ext.user_default.openlrm_blender"

if ADDON not in bpy.context.preferences.addons:
    sys.exit(f"the extension is not enabled; enabled add-ons: {sorted(bpy.context.preferences.addons.keys())}")
preferences = sys.modules[ADDON + ".addon.preferences"]
print(f"OpenLRM: {preferences.torch_in_use()}")
bpy.context.preferences.view.show_splash = False
bpy.ops.wm.save_userpref()
