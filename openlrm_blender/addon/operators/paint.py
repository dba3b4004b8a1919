"""Paint from Photo: the selected mesh objects coloured by TRELLIS from a photo (or several of
the same object), their vertices and faces kept; interactive on a timer, synchronous headless."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import bpy

from ...engine import EngineError
from ...engine.models.registry import TRELLIS, family_of_folder
from ...jobs.job import Job
from ..paint_run import PaintRun
from ..painting import PaintTarget, objects_to_paint, paint_target, refuse_unless_paintable
from ..preferences import DEVICE_ITEMS, get_preferences
from ..properties import OUTPUT_ITEMS, setting_property
from ..state import Runtime
from .engine_run import EngineRunOperator


class OPENLRM_OT_paint_from_photo(EngineRunOperator, bpy.types.Operator):
    """Colour the selected mesh objects from the photo with TRELLIS, every side, their vertices and faces kept"""

    bl_idname = "openlrm.paint_from_photo"
    bl_label = "Paint from Photo"
    bl_options: ClassVar[set[str]] = {"REGISTER", "UNDO"}
    undo_label = "Paint from Photo"

    filepath: bpy.props.StringProperty(name="Image File", subtype="FILE_PATH", options={"SKIP_SAVE"})
    image_name: bpy.props.StringProperty(
        name="Image", description="An image datablock instead of a file", options={"SKIP_SAVE"}
    )
    weights_dir: bpy.props.StringProperty(
        name="TRELLIS Folder", description="A local TRELLIS folder (empty: the preferences', else the Hub's)",
        subtype="DIR_PATH", options={"SKIP_SAVE"},
    )  # fmt: skip
    device: bpy.props.EnumProperty(name="Device", items=DEVICE_ITEMS, options={"SKIP_SAVE"})
    remove_background: setting_property("remove_background", hard_limits=False, options={"SKIP_SAVE"})
    latent_steps: setting_property("latent_steps", hard_limits=False, options={"SKIP_SAVE"})
    latent_guidance: setting_property("latent_guidance", hard_limits=False, options={"SKIP_SAVE"})
    view_mode: setting_property("view_mode", hard_limits=False, options={"SKIP_SAVE"})
    seed: setting_property("seed", hard_limits=False, options={"SKIP_SAVE"})
    output: bpy.props.EnumProperty(name="Output", items=OUTPUT_ITEMS, options={"SKIP_SAVE"})
    texture_size: setting_property("texture_size", hard_limits=False, options={"SKIP_SAVE"})
    photo_texture: bpy.props.BoolProperty(
        name="Photo on the Front", description="Lay the photo's own pixels on the side it shows (off: TRELLIS's "
        "colours alone; default: the sidebar's)", options={"SKIP_SAVE"},
    )  # fmt: skip

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.job is None

    def _weights_dir(self, context: bpy.types.Context) -> str:
        """The TRELLIS folder that paints ("" for TRELLIS from the Hub); any other refused in words."""
        weights_dir = self._value("weights_dir", str(get_preferences(context).painter_folder() or ""))
        if weights_dir:
            folder = Path(bpy.path.abspath(weights_dir))
            family = family_of_folder(folder)
            if family is not TRELLIS:
                raise EngineError(
                    f"{folder}: the model folder of {family.title}; painting needs TRELLIS's (pipeline.json, ckpts/ "
                    "and dinov2/)"
                )
            weights_dir = str(folder)
        return weights_dir

    def _start(self, context: bpy.types.Context, listener=None) -> PaintRun | None:
        settings = context.scene.openlrm
        try:
            self._check_ranges()
            objects = objects_to_paint(context)
            refuse_unless_paintable(context, objects)
            weights_dir = self._weights_dir(context)
            images = self._chosen_images(context)  # the first the main photo, any more views of the same object
            options = self._options(context, TRELLIS.published[0], weights_dir, TRELLIS)
            options.textured = self._value("output", settings.output) == "TEXTURED"
            options.texture_size = self._value("texture_size", int(settings.texture_size))
            options.photo_texture = self._value("photo_texture", settings.paint_photo)
            options.validate()
            targets = [paint_target(context, obj, options.textured) for obj in objects]
        except EngineError as exc:
            self._refused(exc)
            return None
        keep = get_preferences(context).keep_model_loaded
        photos = [source for source, _ in images]

        def make_job(target: PaintTarget, last: bool) -> Job:
            return Job(
                photos[0], options, engine=Runtime.engine, listener=listener, keep_worker=keep or not last,
                low_priority=not bpy.app.background, views=tuple(photos[1:]), paint=target.mesh,
            )  # fmt: skip

        return PaintRun(targets, make_job)
