"""No run, worker, download or install outlives what it belongs to: a file load stops the
run, disabling the add-on or quitting Blender stops everything."""

from __future__ import annotations

import bpy

from ..worker.client import free_models
from . import ticker
from .state import Runtime


def stop_running_job() -> None:
    """Kill the running worker and drop its timer: on file load, add-on disable and quit.
    Killing takes no time, so the interface never waits; nothing reaches the scene."""
    job = Runtime.job
    if job is not None:
        job.cancel(wait=0.5)
    ticker.stop(Runtime.ticker)
    Runtime.job, Runtime.status, Runtime.ticker = None, None, None


def shut_down() -> None:
    """Add-on disabled, or Blender quitting: no run, idle worker, download or install outlives it."""
    stop_running_job()
    ticker.stop_all()
    free_models()
    for task in (Runtime.download, Runtime.torch_install):
        if task is not None:
            task.cancel()
    Runtime.download = Runtime.torch_install = None


@bpy.app.handlers.persistent
def _on_load_pre(*_args) -> None:
    stop_running_job()


handlers = ((bpy.app.handlers.load_pre, _on_load_pre),)
