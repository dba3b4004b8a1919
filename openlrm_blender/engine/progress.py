"""Progress reports and cancellation between the engine and whoever runs it (CLI, Blender)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import Cancelled

# What the engine tells whoever runs it: stage name, fraction of that stage done (0..1), a
# message for people.
ProgressCallback = Callable[[str, float, str], None]
# What one piece of work inside a stage is given (``Reporter.span``): fraction of that piece
# done (0..1), message.
StepCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class Stage:
    name: str  # what progress reports carry
    label: str  # what people read
    share: float  # of one progress bar over the whole run


# Every stage of a run, in order: one vocabulary for the engine, the add-on's job and the
# tests. "startup" is the worker's PyTorch import (a fresh worker only), "sample" a flow
# model's steps (TripoSG, TRELLIS), "surface" and "quads" (Blender's remeshers, after the
# worker) run only when asked for, and "import" is Blender making the object.
RUN_STAGES = (
    Stage("startup", "Loading PyTorch", 0.05),
    Stage("model", "Getting the model", 0.10),
    Stage("preprocess", "Preparing image", 0.05),
    Stage("encode", "Encoding", 0.15),
    Stage("sample", "Sampling", 0.40),
    Stage("mesh", "Building mesh", 0.15),
    Stage("surface", "Finishing the surface", 0.05),
    Stage("quads", "Making quads", 0.10),
    Stage("import", "Importing", 0.05),
)
STAGE = {stage.name: stage for stage in RUN_STAGES}
STAGES = ("model", "preprocess", "encode", "sample", "mesh", "surface")  # the engine's own, in order


def overall_fraction(stage: str, fraction: float, skipped: tuple[str, ...] = ()) -> float:
    """Position on one bar for the whole run, from a stage and the fraction done within it;
    the ``skipped`` stages' shares go to the others (a model that samples nothing)."""
    stages = [each for each in RUN_STAGES if each.name not in skipped or each.name == stage]
    whole = sum(each.share for each in stages)
    done = 0.0
    for each in stages:
        if each.name == stage:
            return (done + each.share * fraction) / whole
        done += each.share
    return done / whole


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

    def timed(self, stopwatch: Stopwatch, synchronise: Callable[[], None]) -> TimedReporter:
        """This reporter for a model's work, which spans stages of its own."""
        return TimedReporter(self, stopwatch, synchronise)


class TimedReporter(Reporter):
    """Reports of a model's work: each waits for the device first (a GPU's queued work is not
    yet done, so neither the progress nor a time would be true), and a stage's seconds are
    lapped on the stopwatch when the next stage's first report comes (``end`` laps the last)."""

    def __init__(self, reporter: Reporter, stopwatch: Stopwatch, synchronise: Callable[[], None]) -> None:
        super().__init__(reporter._callback, reporter._cancel)
        self._stopwatch, self._synchronise = stopwatch, synchronise
        self.stage: str | None = None

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        self._synchronise()
        if stage != self.stage:
            self.end()
            self.stage = stage
        super().__call__(stage, fraction, message)

    def end(self) -> None:
        if self.stage is not None:
            self._stopwatch.lap(self.stage)


def duration(seconds: float) -> str:
    """A time for people to read: seconds, or minutes from a minute and a half."""
    return f"{max(seconds, 1):.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class StepsLeft:
    """A flow model's progress in words: "step 3 of 50, about 4 min left". Steps may differ
    in cost (TRELLIS's two stages): each has a weight, and the time left is the time so far
    per unit of weight done times the weight to come."""

    def __init__(self, weights: Sequence[float] | int) -> None:
        self.weights = [1.0] * weights if isinstance(weights, int) else [float(weight) for weight in weights]
        self.started = time.perf_counter()

    def reweigh(self, first: int, weights: Sequence[float]) -> None:
        """New weights from step ``first`` on (a cost known only once earlier steps ran)."""
        self.weights[first:] = [float(weight) for weight in weights]

    def fraction(self, done: int) -> float:
        return sum(self.weights[:done]) / sum(self.weights)

    def after(self, done: int, label: str = "step", first: int = 0, count: int | None = None) -> str:
        """Words after ``done`` steps of all: ``label`` k of ``count`` for the steps from
        ``first`` (one stage of several), and the time left once a step has run."""
        count = len(self.weights) - first if count is None else count
        words = f"{label} {done - first} of {count}"
        if 0 < done < len(self.weights):
            per_weight = (time.perf_counter() - self.started) / sum(self.weights[:done])
            words += f", about {duration(per_weight * sum(self.weights[done:]))} left"
        return words


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
        """The seconds since the last lap, added to ``name``'s: a stage met twice counts both
        times (a second model's load; TRELLIS's decoders and the mesh made of them)."""
        now = self._now()
        self.laps[name], self._last = self.laps.get(name, 0.0) + now - self._last, now

    def total(self) -> float:
        return self._now() - self.started
