"""PyTorch from the preferences: open them where it is installed, install one for this
machine, check what it sees, remove it, or copy the command that installs it by hand."""

from __future__ import annotations

import bpy

from ...engine.pytorch import install_command, torch_found
from ...jobs import pytorch_install
from ...worker.client import free_models
from .. import ADDON_PACKAGE
from ..preferences import TORCH_VARIANT_ITEMS, pytorch_root, torch_in_use
from ..state import Runtime
from .tasks import TaskOperator, online


class OPENLRM_OT_show_pytorch_preferences(bpy.types.Operator):
    """Open the add-on's preferences, where Install PyTorch gets one for this machine"""

    bl_idname = "openlrm.show_pytorch_preferences"
    bl_label = "Install PyTorch..."

    def execute(self, context: bpy.types.Context) -> set[str]:
        bpy.ops.preferences.addon_show(module=ADDON_PACKAGE)  # opens the preferences on the add-on, expanded
        return {"FINISHED"}


class OPENLRM_OT_copy_torch_command(bpy.types.Operator):
    """Copy the command that installs PyTorch's CPU build into Blender's own Python"""

    bl_idname = "openlrm.copy_torch_command"
    bl_label = "Copy Install Command"

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.window_manager.clipboard = install_command()
        self.report({"INFO"}, f"Copied: {install_command()}  (the next Generate uses it: no restart)")
        return {"FINISHED"}


class OPENLRM_OT_install_torch(TaskOperator, bpy.types.Operator):
    """Install a PyTorch for this machine into the add-on's own folder with Blender's pip; it is
    checked in a fresh process before it is used"""

    bl_idname = "openlrm.install_torch"
    bl_label = "Install PyTorch"
    slot = "torch_install"

    variant: bpy.props.EnumProperty(name="Variant", items=TORCH_VARIANT_ITEMS)
    index_url: bpy.props.StringProperty(name="Index URL", description="Empty: PyTorch's own index for the variant")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if Runtime.job is not None:
            cls.poll_message_set("Wait for the run to end, or cancel it")
            return False
        return online(cls) and Runtime.torch_install is None

    def make_task(self, context: bpy.types.Context) -> pytorch_install.Install:
        free_models()  # the idle worker holds the PyTorch in use: it must not be in the way
        Runtime.last_torch_error = Runtime.last_torch_log = ""
        return pytorch_install.Install(pytorch_root(create=True), self.variant, self.index_url)

    @staticmethod
    def failed(task: pytorch_install.Install) -> None:
        Runtime.last_torch_error, Runtime.last_torch_log = task.error, task.log  # the preferences show pip's end

    @staticmethod
    def finished(task: pytorch_install.Install) -> str:
        pytorch_install.activate(task.root)
        torch_in_use.cache_clear()
        Runtime.torch_devices = pytorch_install.describe_devices(task.result)
        free_models()  # the next run's worker starts on the new PyTorch: no restart needed
        return f"OpenLRM: PyTorch {task.result['version']} installed and in use"


class OPENLRM_OT_check_torch(TaskOperator, bpy.types.Operator):
    """Ask the PyTorch in use, in a fresh process, which devices it sees"""

    bl_idname = "openlrm.check_torch"
    bl_label = "Check"
    slot = "torch_check"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.torch_check is None and torch_found() is not None

    def make_task(self, context: bpy.types.Context) -> pytorch_install.Check:
        return pytorch_install.Check(torch_found()[1].parent)

    @staticmethod
    def finished(task: pytorch_install.Check) -> str:
        Runtime.torch_devices = pytorch_install.describe_devices(task.result)
        return f"OpenLRM: PyTorch {task.result['version']} sees {Runtime.torch_devices}"


class OPENLRM_OT_remove_torch(bpy.types.Operator):
    """Remove the PyTorch the add-on installed: back to the bundled one (or Blender's)"""

    bl_idname = "openlrm.remove_torch"
    bl_label = "Remove Installed PyTorch"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return Runtime.job is None and Runtime.torch_install is None

    def execute(self, context: bpy.types.Context) -> set[str]:
        free_models()
        pytorch_install.remove(pytorch_root())
        torch_in_use.cache_clear()
        Runtime.torch_devices = ""
        self.report({"INFO"}, f"OpenLRM: {torch_in_use()}")
        return {"FINISHED"}
