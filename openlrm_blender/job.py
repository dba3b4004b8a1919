"""One generation run, in a worker thread or in the caller's thread; never touches ``bpy``.

The worker only computes mesh arrays. Blender's main thread asks ``poll()`` on each
timer tick for the latest progress and, at the end, the result or the error.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .engine import CancelToken, Cancelled, EngineError, Options, Result, require_torch
from .engine.image_source import ImageSource

# Share of the whole bar each stage fills; "startup" (PyTorch's import, first run of a
# session only) comes before the engine's stages, "import" in Blender after the worker.
STAGE_WEIGHTS = {"startup": 0.05, "model": 0.10, "preprocess": 0.05, "encode": 0.35, "mesh": 0.40, "import": 0.05}
STAGE_LABELS = {
    "startup": "Loading PyTorch",
    "model": "Getting the model",
    "preprocess": "Preparing image",
    "encode": "Encoding",
    "mesh": "Building mesh",
    "import": "Importing",
}

Generate = Callable[..., Result]


def generate(
    image: ImageSource, options: Options, progress: Callable | None = None, cancel: CancelToken | None = None
) -> Result:
    """The engine's ``generate``, imported at the first run, not when the add-on is enabled:
    PyTorch takes seconds to import (longest on the first run after installing), and may
    be missing (then this says how to get it)."""
    require_torch()
    first = "torch" not in sys.modules
    if first and progress:
        progress("startup", 0.0, "first run of this session (longest after installing)")
    from .engine.pipeline import generate as run

    if first and progress:
        progress("startup", 1.0, "PyTorch loaded")
    return run(image, options, progress=progress, cancel=cancel)


def free_models() -> None:
    """Free the cached model; before the first run has loaded PyTorch there is none."""
    if "torch" in sys.modules:
        from .engine.pipeline import unload_models

        unload_models()


def overall_fraction(stage: str, fraction: float) -> float:
    """Position on one bar for all stages, from a stage and the fraction done within it."""
    done = 0.0
    for name, weight in STAGE_WEIGHTS.items():
        if name == stage:
            return done + weight * fraction
        done += weight
    return done


@dataclass
class Status:
    stage: str = "model"
    fraction: float = 0.0  # of the whole run
    message: str = ""
    finished: bool = False
    result: Result | None = None
    error: str | None = None  # one line for the status bar
    cancelled: bool = False

    @property
    def label(self) -> str:
        return f"{STAGE_LABELS.get(self.stage, self.stage)}: {self.message}" if self.message else STAGE_LABELS.get(self.stage, self.stage)


class Job:
    """Runs ``generate(image, options, progress, cancel)`` once and keeps its status."""

    def __init__(
        self,
        image: ImageSource,
        options: Options,
        engine: Generate = generate,
        listener: Callable[[Status], None] | None = None,
    ) -> None:
        """``listener`` hears each status change in the running thread (for printing)."""
        self.image = image
        self.options = options
        self._engine = engine
        self._listener = listener
        self._token = CancelToken()
        self._lock = threading.Lock()
        self._status = Status()
        self._thread: threading.Thread | None = None

    def _progress(self, stage: str, fraction: float, message: str) -> None:
        with self._lock:
            self._status.stage = stage
            self._status.fraction = max(self._status.fraction, overall_fraction(stage, fraction))
            self._status.message = message
            snapshot = Status(**vars(self._status))
        if self._listener is not None:
            self._listener(snapshot)

    def _finish(self, **outcome) -> None:
        with self._lock:
            for key, value in outcome.items():
                setattr(self._status, key, value)
            self._status.finished = True

    def run(self) -> None:
        """Run to the end in this thread; the outcome is in ``poll()``."""
        try:
            result = self._engine(self.image, self.options, progress=self._progress, cancel=self._token)
        except Cancelled:
            self._finish(cancelled=True)
        except EngineError as exc:
            self._finish(error=str(exc))
        except MemoryError:
            self._finish(error="out of memory: try a smaller model or a lower mesh resolution")
        except Exception as exc:  # a bug: keep Blender alive and say what happened
            traceback.print_exc()
            self._finish(error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            self._finish(result=result)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="openlrm-job", daemon=True)
        self._thread.start()

    def cancel(self, wait: float | None = None) -> None:
        """Ask the run to stop; with ``wait``, block up to that many seconds for the thread."""
        self._token.cancel()
        if wait is not None and self._thread is not None:
            self._thread.join(wait)

    @property
    def cancel_requested(self) -> bool:
        return self._token.cancelled

    def poll(self) -> Status:
        """A snapshot of the status, safe to read from Blender's main thread."""
        with self._lock:
            return Status(**vars(self._status))
