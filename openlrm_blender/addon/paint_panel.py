"""The sidebar's Paint sub-panel: the selected meshes coloured by TRELLIS from the image chosen
above (its Output: vertex colours, or a texture on each object's UVs)."""

from __future__ import annotations

import bpy

from .painting import objects_to_paint
from .preferences import get_preferences
from .state import Runtime


class OPENLRM_PT_paint(bpy.types.Panel):
    bl_label = "Paint"
    bl_idname = "OPENLRM_PT_paint"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to 3D"
    bl_parent_id = "OPENLRM_PT_image_to_3d"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.openlrm
        objects = objects_to_paint(context) if context.mode == "OBJECT" else []
        layout.label(text="TRELLIS colours meshes from the image", icon="INFO")
        column = layout.column(align=True)
        column.prop(settings, "paint_photo")
        row = column.row(align=True)
        row.prop(settings, "seed")
        row.operator("openlrm.new_seed", text="", icon="FILE_REFRESH")
        preferences = get_preferences(context)
        if preferences.painter_missing():
            if preferences.painter_folder() is not None:
                layout.label(text="The preferences' TRELLIS Folder is not TRELLIS's", icon="ERROR")
            else:
                layout.label(text="TRELLIS (4.2 GB) downloads on first use", icon="URL")
        row = layout.row()
        row.enabled = bool(objects) and Runtime.job is None
        text = "Paint from Photo" if len(objects) != 1 else f"Paint {objects[0].name}"
        row.operator("openlrm.paint_from_photo", text=text if len(objects) < 2 else f"Paint {len(objects)} Objects",
                     icon="VPAINT_HLT")  # fmt: skip
        if not objects:
            layout.label(text="Select mesh objects (Object Mode)", icon="RESTRICT_SELECT_OFF")
