"""Work under way looked at on Blender's own timers (``bpy.app.timers``), not from a modal
operator: a modal operator's handler stays in its window, and Blender 4.3 crashed calling
the stale handler of one whose add-on had been disabled mid-run. A timer is a plain
function, removed on unregister, and reports reach the status bar through ``report``."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable

import bpy

from .state import TICK_SECONDS

_timers: set[Callable[[], float | None]] = set()


def every_tick(
    step: Callable[[bpy.types.Context], bool],
    window: bpy.types.Window | None,
    failed: Callable[[], None],
    survives_file_load: bool = False,
) -> Callable[[], float | None]:
    """Call ``step(context)`` every tick until it returns True, in ``window``'s context (the
    one the work was started from, while it is open) so that new objects go where the user
    is. Should ``step`` raise (our bug), it is reported, ``failed()`` puts the state back and
    the timer ends: Blender goes on. Blender drops the timer on a file load unless
    ``survives_file_load``."""

    def tick() -> float | None:
        try:
            with bpy.context.temp_override(**_window_context(window)):
                done = step(bpy.context)
        except Exception as exc:  # noqa: BLE001 (our bug, whatever it is: reported, and Blender goes on)
            traceback.print_exc()
            failed()
            report(
                "ERROR", f"OpenLRM: internal error ({type(exc).__name__}: {exc}); the details are in the system console"
            )
            done = True
        if done:
            _timers.discard(tick)
            return None
        return TICK_SECONDS

    _timers.add(tick)
    bpy.app.timers.register(tick, first_interval=TICK_SECONDS, persistent=survives_file_load)
    return tick


def _window_context(window: bpy.types.Window | None) -> dict:
    """``window``, or where it was closed (or went with a file load) the first one open."""
    try:
        if window is not None and window.screen is not None:
            return {"window": window}
    except ReferenceError:
        pass
    windows = bpy.context.window_manager.windows
    return {"window": windows[0]} if len(windows) else {}


def stop(tick: Callable[[], float | None] | None) -> None:
    if tick is not None and bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    _timers.discard(tick)


def stop_all() -> None:
    """On disable and quit: no timer of ours is left to call."""
    for tick in list(_timers):
        stop(tick)


def running() -> bool:
    return bool(_timers)


def report(level: str, message: str) -> None:
    """An operator's report from a timer: in the status bar and the Info editor."""
    with contextlib.suppress(RuntimeError):  # an ERROR report is raised back at its Python caller, once shown
        bpy.ops.openlrm.report(level=level, message=message)


def redraw() -> None:
    """What shows our progress: the 3D views' sidebars (not the viewports themselves, whose
    redraw costs the worker CPU) and the preferences."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()
            elif area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()
