"""Operators whose work is a ``jobs.task.Task`` in a thread: modal with the interface up,
synchronous headless or from a script; and the Cancel button for any of them."""

from __future__ import annotations

import bpy

from ..state import TICK_SECONDS, Runtime


class TaskOperator:
    """An operator whose work runs in a thread (a Download, an Install): synchronous when
    headless or called from a script, else modal, redrawing its area until the task ends."""

    slot = ""  # the Runtime attribute that holds the task while it runs
    _timer = None

    def make_task(self, context: bpy.types.Context):
        raise NotImplementedError

    def outcome(self, context: bpy.types.Context, task) -> set[str]:
        raise NotImplementedError

    def _finish(self, context: bpy.types.Context, task) -> set[str]:
        setattr(Runtime, self.slot, None)
        if task.error:
            self.report({"ERROR"}, task.error)
            return {"CANCELLED"}
        return self.outcome(context, task)

    def execute(self, context: bpy.types.Context) -> set[str]:
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.run()
        return self._finish(context, task)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        task = self.make_task(context)
        setattr(Runtime, self.slot, task)
        task.start()
        self._timer = context.window_manager.event_timer_add(TICK_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        task = getattr(Runtime, self.slot)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if context.area is not None:
            context.area.tag_redraw()
        if task is not None and not task.finished:
            return {"RUNNING_MODAL"}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, task) if task is not None else {"CANCELLED"}


def _online(cls) -> bool:
    if not bpy.app.online_access:
        cls.poll_message_set("Online access is off (Preferences > System)")
    return bpy.app.online_access


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
