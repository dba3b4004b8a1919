"""Operators whose work is a ``jobs.task.Task`` in a thread: looked at on a timer with the
interface up, synchronous headless or from a script; and the Cancel button for any of them."""

from __future__ import annotations

import bpy

from .. import ticker
from ..state import Runtime


class TaskOperator:
    """An operator whose work runs in a thread (a Download, an Install): synchronous when
    headless or called from a script, else on a timer that redraws until the task ends."""

    slot = ""  # the Runtime attribute that holds the task while it runs

    def make_task(self, context: bpy.types.Context):
        raise NotImplementedError

    @staticmethod
    def finished(task) -> str:
        """What a task that succeeded changes, and its message."""
        raise NotImplementedError

    @staticmethod
    def failed(task) -> None:
        """What a task that failed leaves for the interface, beyond its message (nothing here)."""

    @classmethod
    def conclude(cls, task) -> tuple[str, str]:
        """The task has ended: its slot freed, and its report's level and message. A class
        method: on a timer, the operator that started the task is gone."""
        setattr(Runtime, cls.slot, None)
        if task.error:
            cls.failed(task)
            return "ERROR", task.error
        return "INFO", cls.finished(task)

    def execute(self, context: bpy.types.Context) -> set[str]:
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.run()
        level, message = self.conclude(task)
        self.report({level}, message)
        return {"CANCELLED"} if level == "ERROR" else {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.start()
        operator, slot = type(self), self.slot  # not self: the operator ends now

        def step(context: bpy.types.Context) -> bool:
            ticker.redraw()  # the preferences' progress
            if not task.finished:
                return False
            ticker.report(*operator.conclude(task))
            return True

        def put_back() -> None:
            task.cancel()
            setattr(Runtime, slot, None)

        ticker.every_tick(step, context.window, put_back, survives_file_load=True)  # as the task itself does
        return {"FINISHED"}


def online(cls) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set("Online access is off (Preferences > System)")
    return bpy.app.online_access


class OPENLRM_OT_cancel_task(bpy.types.Operator):
    """Stop the download or install; nothing is changed"""

    bl_idname = "openlrm.cancel_task"
    bl_label = "Cancel"

    slot: bpy.props.StringProperty(options={"HIDDEN"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        task = getattr(Runtime, self.slot, None)
        if task is not None:
            task.cancel()
        return {"FINISHED"}
