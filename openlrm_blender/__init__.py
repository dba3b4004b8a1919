"""OpenLRM for Blender: one image to a coloured 3D mesh, in the sidebar's "Image to 3D" tab.

The folders follow the data and the process boundary: ``addon/`` is all that imports
``bpy``; ``jobs/`` is the work Blender's process does off its main thread; ``worker/`` is
the model's own process and its pipe; ``engine/`` is image -> triplanes -> mesh -> file,
plain PyTorch and NumPy. ``bpy`` is imported only in ``register()``, so
``python -m openlrm_blender.engine`` and the engine's tests run without Blender.
"""

from __future__ import annotations

import atexit


def register() -> None:
    import bpy

    from .addon import lifecycle, operators, panel, preferences, properties
    from .jobs import pytorch_install

    pytorch_install.activate(preferences.pytorch_root())  # a PyTorch the add-on installed comes first
    bpy.utils.register_class(properties.OpenLRMSettings)
    bpy.types.Scene.openlrm = bpy.props.PointerProperty(type=properties.OpenLRMSettings)
    bpy.types.Image.openlrm_chosen = properties.IMAGE_CHOSEN
    bpy.utils.register_class(preferences.OpenLRMPreferences)
    for cls in (*operators.classes, *panel.classes):
        bpy.utils.register_class(cls)
    operators.register_keymap()
    for handler_list, handler in lifecycle.handlers:
        handler_list.append(handler)
    panel.register_previews()
    atexit.register(lifecycle.shut_down)  # quitting Blender ends the worker too


def unregister() -> None:
    import bpy

    from .addon import lifecycle, operators, panel, preferences, properties

    atexit.unregister(lifecycle.shut_down)
    lifecycle.shut_down()
    panel.unregister_previews()
    for handler_list, handler in lifecycle.handlers:
        if handler in handler_list:
            handler_list.remove(handler)
    operators.unregister_keymap()
    for cls in reversed((*operators.classes, *panel.classes)):
        bpy.utils.unregister_class(cls)
    bpy.utils.unregister_class(preferences.OpenLRMPreferences)
    del bpy.types.Scene.openlrm
    del bpy.types.Image.openlrm_chosen
    bpy.utils.unregister_class(properties.OpenLRMSettings)
