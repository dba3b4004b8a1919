"""Download Now in the preferences: a background removal model fetched ahead of its first use."""

from __future__ import annotations

import bpy

from ...engine.input import background
from ...jobs.downloads import Download
from ..state import Runtime
from .tasks import TaskOperator, online


class OPENLRM_OT_download_background_model(TaskOperator, bpy.types.Operator):
    """Download this background removal model now, from rembg's release files, into rembg's folder"""

    bl_idname = "openlrm.download_background_model"
    bl_label = "Download Now"
    slot = "download"

    model: bpy.props.EnumProperty(
        name="Model", items=[(name, name, model.description) for name, model in background.MODELS.items()]
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return online(cls) and Runtime.download is None

    def make_task(self, context: bpy.types.Context) -> Download:
        return Download(self.model)

    @staticmethod
    def finished(task: Download) -> str:
        return f"OpenLRM: {task.name} is in {task.result}"
