"""The "Image to 3D" tab of the 3D viewport's sidebar."""

from __future__ import annotations

from pathlib import Path

import bpy
import bpy.utils.previews

from ..engine import PyTorchMissing, torch_available
from ..engine.models.estimate import estimated
from .paint_panel import OPENLRM_PT_paint
from .preferences import get_preferences
from .state import Runtime
from .time_estimate import cpu_estimate, on_the_cpu

_previews = None
# The Advanced settings the sidebar has, in its order, each shown where the model uses it.
ADVANCED = ("recenter", "foreground_ratio", "camera_distance", "steps", "guidance", "latent_steps", "latent_guidance",
            "seed", "view_mode", "resolution", "threshold")  # fmt: skip


def _file_preview(filepath: str) -> int:
    """Icon id of a preview of an image file, loaded once per path."""
    path = bpy.path.abspath(filepath)
    if _previews is None or not Path(path).is_file():
        return 0
    if path not in _previews:
        _previews.load(path, path, "IMAGE")
    return _previews[path].icon_id


class OPENLRM_UL_images(bpy.types.UIList):
    """The file's images, each with the tick that puts it in the next batch."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        layout.prop(item, "openlrm_chosen", text="")
        layout.label(text=item.name, icon="IMAGE_DATA")


class OPENLRM_PT_image_to_3d(bpy.types.Panel):
    bl_label = "Image to 3D"
    bl_idname = "OPENLRM_PT_image_to_3d"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Image to 3D"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.openlrm
        preferences = get_preferences(context)
        from_folder = preferences.folder_model()  # (its line, its family or None) with a local folder
        family = (from_folder and from_folder[1]) or preferences.family(
            None if settings.model == "DEFAULT" else settings.model
        )
        run_family = family if from_folder is None else from_folder[1]  # None: the run will say what is wrong
        # Why TRELLIS cannot colour this family's shapes without a download ("" where it can).
        painter_missing = "" if family.makes_colours else preferences.painter_missing()
        layout.row().prop(settings, "source", expand=True)
        if settings.source == "FILE":
            layout.prop(settings, "filepath", text="")
            icon = _file_preview(settings.filepath) if settings.filepath else 0
        elif settings.source == "IMAGES":
            layout.template_list("OPENLRM_UL_images", "", bpy.data, "images", settings, "image_index", rows=4)
            chosen = sum(image.openlrm_chosen for image in bpy.data.images)
            each = "one object" if settings.one_object and family.views else "one object each"
            layout.label(text=f"{chosen} of {len(bpy.data.images)} ticked: {each}")
            row = layout.row()
            row.enabled = family.views  # greyed out for a model of one photo; its tooltip says why
            row.prop(settings, "one_object")
            icon = 0
        else:
            layout.template_ID(settings, "image", open="image.open")
            icon = settings.image.preview.icon_id if settings.image else 0
        if icon:
            layout.template_icon(icon_value=icon, scale=6.0)

        if from_folder is None:
            layout.prop(settings, "model")
        else:  # the folder decides the model: a menu could only contradict the run
            layout.label(text=from_folder[0], icon="FILE_FOLDER")
        if run_family is not None:
            for index, line in enumerate(_wrap(run_family.licence, _line_width(context))):
                layout.label(text=line, icon="INFO" if index == 0 else "BLANK1")
        if run_family is not None and estimated(run_family.name) and on_the_cpu(preferences.device):
            folder = preferences.weights_folder()
            text, pending = cpu_estimate(run_family, settings, preferences.precision, folder, not painter_missing)
            for index, line in enumerate(_wrap(text, _line_width(context))):
                layout.label(text=line, icon="TIME" if index == 0 else "BLANK1")
            if pending:
                layout.operator("openlrm.measure_cpu", icon="PLAY")

        # Labels inside their fields (no split layout): every word stays readable at the
        # sidebar's default width. The everyday options first, the rest under Advanced.
        layout.prop(settings, "remove_background")
        layout.row().prop(settings, "output", expand=True)
        layout.row().prop(settings, "topology", expand=True)
        if settings.output == "TEXTURED" or settings.topology == "QUADS":
            column = layout.column(align=True)
            column.prop(settings, "faces")
            if settings.output == "TEXTURED":
                column.prop(settings, "texture_size", text="")
                column.prop(settings, "photo_texture")
        if not family.makes_colours:
            _colours_choice(context, layout, settings, painter_missing)
        header, body = layout.panel_prop(settings, "show_advanced")  # a property: scripts can open it too
        header.label(text="Advanced")
        if body is not None:
            column = body.column(align=True)
            for name in ADVANCED:  # what the model reads: a flow model its sampling, no camera
                if name == "seed" and name in family.uses:
                    row = column.row(align=True)
                    row.prop(settings, "seed")
                    row.operator("openlrm.new_seed", text="", icon="FILE_REFRESH")
                elif name in family.uses:
                    column.prop(settings, name)
            column.prop(settings, "smooth_shading")
            column.prop(settings, "remove_floaters")
            column.prop(settings, "mirror_photo")

        if not torch_available():
            _torch_missing_box(context, layout)
        status = Runtime.status
        if Runtime.job is not None and status is not None:
            layout.progress(factor=status.fraction, type="BAR", text=f"{status.headline} ({status.fraction:.0%})")
            layout.operator("openlrm.cancel", icon="CANCEL")
        else:
            layout.operator("openlrm.image_to_3d", text="Generate", icon="MESH_MONKEY")
        if Runtime.last_error and Runtime.last_error_kind != PyTorchMissing.__name__:  # that one has its box
            _message_box(context, layout, Runtime.last_error)
        elif Runtime.last_info:
            for index, line in enumerate(_wrap(Runtime.last_info, _line_width(context))):
                layout.label(text=line, icon="CHECKMARK" if index == 0 else "BLANK1")


def _colours_choice(context: bpy.types.Context, layout: bpy.types.UILayout, settings, missing: str) -> None:
    """A shape-only model's colours: the photo's, or TRELLIS's where its weights are here."""
    row = layout.row(align=True)
    row.enabled = not missing
    row.label(text="Colours")
    row.prop(settings, "colours", expand=True)
    if missing:
        for index, line in enumerate(_wrap(f"Colours from the photo: {missing}", _line_width(context))):
            layout.label(text=line, icon="INFO" if index == 0 else "BLANK1")


def _line_width(context: bpy.types.Context) -> int:
    """About how many characters fit on a label beside an icon in this region."""
    pixels = context.region.width / context.preferences.system.ui_scale
    return max(16, int((pixels - 50) / 7))


def _message_box(context: bpy.types.Context, layout: bpy.types.UILayout, text: str) -> None:
    """An error in a box, wrapped to the region's width."""
    box = layout.box()
    for index, line in enumerate(_wrap(text, _line_width(context))):
        box.label(text=line, icon="ERROR" if index == 0 else "BLANK1")


def _torch_missing_box(context: bpy.types.Context, layout: bpy.types.UILayout) -> None:
    """What to do without PyTorch, short enough for the sidebar; the full command is copied."""
    box = layout.box()
    box.label(text="PyTorch is missing", icon="ERROR")
    advice = "This build of the add-on comes without it. Install one for this machine in one click (no restart):"
    for line in _wrap(advice, _line_width(context)):
        box.label(text=line, icon="BLANK1")
    box.operator("openlrm.show_pytorch_preferences", icon="PREFERENCES")
    for line in _wrap("Or install it into Blender's Python by hand:", _line_width(context)):
        box.label(text=line, icon="BLANK1")
    box.operator("openlrm.copy_torch_command", icon="COPYDOWN")


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def register_previews() -> None:
    global _previews
    _previews = bpy.utils.previews.new()


def unregister_previews() -> None:
    global _previews
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None


classes = (OPENLRM_UL_images, OPENLRM_PT_image_to_3d, OPENLRM_PT_paint)
