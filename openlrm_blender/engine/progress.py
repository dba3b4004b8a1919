"""Progress reports and cancellation between the engine and whoever runs it (CLI, Blender)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled

# stage name, fraction of that stage done (0..1), message for people
ProgressCallback = Callable[[str, float, str], None]
# fraction of one step done (0..1), message: what a step of a stage reports
StepCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class Stage:
    name: str  # what progress reports carry
    label: str  # what people read
    share: float  # of one progress bar over the whole run


# Every stage of a run, in order: one vocabulary for the engine, the add-on's job and the
# tests. "startup" is the worker's PyTorch import (a fresh worker only), "surface" and
# "quads" (Blender's remeshers, after the worker) run only when asked for, and "import" is
# Blender making the object.
RUN_STAGES = (
    Stage("startup", "Loading PyTorch", 0.05),
    Stage("model", "Getting the model", 0.10),
    Stage("preprocess", "Preparing image", 0.05),
    Stage("encode", "Encoding", 0.30),
    Stage("mesh", "Building mesh", 0.30),
    Stage("surface", "Finishing the surface", 0.05),
    Stage("quads", "Making quads", 0.10),
    Stage("import", "Importing", 0.05),
)
STAGE = {stage.name: stage for stage in RUN_STAGES}
STAGES = ("model", "preprocess", "encode", "mesh", "surface")  # the engine's own, in order


def overall_fraction(stage: str, fraction: float) -> float:
    """Position on one bar for the whole run, from a stage and the fraction done within it."""
    done = 0.0
    for each in RUN_STAGES:
        if each.name == stage:
            return done + each.share * fraction
        done += each.share
    return done


class CancelToken:
    """Set from any thread; the engine checks it between chunks of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


class Reporter:
    """Sends progress to the callback and stops the run at each report once cancelled."""

    def __init__(self, callback: ProgressCallback | None = None, cancel: CancelToken | None = None) -> None:
        self._callback = callback
        self._cancel = cancel

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        if self._cancel is not None:
            self._cancel.check()
        if self._callback is not None:
            self._callback(stage, min(max(fraction, 0.0), 1.0), message)

    def span(self, stage: str, start: float, end: float) -> StepCallback:
        """A step that fills ``start``..``end`` of ``stage``."""
        return lambda fraction, message="": self(stage, start + (end - start) * fraction, message)


class Stopwatch:
    """Seconds taken by successive steps of a run, recorded by name into ``laps``.

    ``synchronise`` waits for the device before each reading: a GPU runs the work queued on
    it after the call that queued it returns, so without it a stage's time is counted in the
    next one's."""

    def __init__(self, laps: dict[str, float], synchronise: Callable[[], None] | None = None) -> None:
        self.laps = laps
        self._synchronise = synchronise
        self.started = self._last = self._now()

    def _now(self) -> float:
        if self._synchronise is not None:
            self._synchronise()
        return time.perf_counter()

    def lap(self, name: str) -> None:
        now = self._now()
        self.laps[name], self._last = now - self._last, now

    def total(self) -> float:
        return self._now() - self.started
