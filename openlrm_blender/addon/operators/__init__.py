"""Every operator the add-on registers (Generate, Paint from Photo and their helpers), the drop of
image files on the 3D viewport, and Esc."""

import bpy

from .downloads import OPENLRM_OT_download_background_model
from .estimate import OPENLRM_OT_measure_cpu
from .generate import (
    OPENLRM_FH_image_to_3d,
    OPENLRM_OT_cancel,
    OPENLRM_OT_free_model,
    OPENLRM_OT_image_to_3d,
    OPENLRM_OT_new_seed,
    OPENLRM_OT_report,
)
from .paint import OPENLRM_OT_paint_from_photo
from .pytorch import (
    OPENLRM_OT_check_torch,
    OPENLRM_OT_copy_torch_command,
    OPENLRM_OT_install_torch,
    OPENLRM_OT_remove_torch,
    OPENLRM_OT_show_pytorch_preferences,
)
from .tasks import OPENLRM_OT_cancel_task

classes = (
    OPENLRM_OT_image_to_3d,
    OPENLRM_OT_paint_from_photo,
    OPENLRM_OT_cancel,
    OPENLRM_OT_free_model,
    OPENLRM_OT_show_pytorch_preferences,
    OPENLRM_OT_copy_torch_command,
    OPENLRM_OT_download_background_model,
    OPENLRM_OT_install_torch,
    OPENLRM_OT_check_torch,
    OPENLRM_OT_remove_torch,
    OPENLRM_OT_cancel_task,
    OPENLRM_OT_measure_cpu,
    OPENLRM_OT_new_seed,
    OPENLRM_OT_report,
    OPENLRM_FH_image_to_3d,
)


def register_keymap() -> None:
    """Esc cancels a run anywhere in the window while one is under way (Cancel's poll lets
    the key through otherwise)."""
    keyconfig = bpy.context.window_manager.keyconfigs.addon
    if keyconfig is None:  # background mode has no key configuration
        return
    keymap = keyconfig.keymaps.new(name="Window", space_type="EMPTY")
    _keymap_items.append((keymap, keymap.keymap_items.new(OPENLRM_OT_cancel.bl_idname, "ESC", "PRESS")))


def unregister_keymap() -> None:
    for keymap, item in _keymap_items:
        keymap.keymap_items.remove(item)
    _keymap_items.clear()


_keymap_items: list = []
