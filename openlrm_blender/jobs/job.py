"""A run as the add-on sees it (a mesh made from photos, or a mesh painted from them), off
Blender's main thread and never touching ``bpy``: computed in the model's own process
(``worker.server``, through ``worker.client``).

A thread of Blender's process sends the run to the worker and reads its replies;
Blender's main thread asks ``poll()`` on each timer tick for the latest progress and, at
the end, the result or the error. The model never runs in Blender's process: its
imports and loops cannot hold Blender's interpreter, running out of memory or crashing
ends only the worker, and Cancel kills the worker, which acts at once in any stage. Quads,
when asked for, are made after the worker's part, in a Blender process of their own
(``jobs.quads``), killed by Cancel alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine import Cancelled, CancelToken, EngineError, Mesh, Options, Result, require_torch, torch_available
from ..engine.errors import error_of_kind, kind_of
from ..engine.input.mesh_file import PaintMesh
from ..engine.input.read import ImageSource
from ..engine.models.registry import family_of
from ..engine.progress import STAGE, overall_fraction
from ..worker.client import Worker, keep_idle, take_worker
from . import windows_paths
from .quads import PolygonMesh, QuadRequest, QuadsFailed, RemeshProcess, make_quads


@dataclass(frozen=True)
class Engine:
    """What the worker runs: the published pipeline, or a function that tests name."""

    target: str | None = None  # "module:function"; None: engine.pipeline.generate
    arguments: dict = field(default_factory=dict)


@dataclass
class Status:
    stage: str = "startup"
    fraction: float = 0.0  # of the whole run
    message: str = ""
    finished: bool = False
    result: Result | None = None
    quads: PolygonMesh | None = None  # the result's mesh as quads, when asked for and made
    quads_error: str | None = None  # why there are none, when asked for (the triangles stay)
    error: str | None = None  # one line for the status bar
    error_kind: str | None = None  # the EngineError subclass it came as (errors.kind_of)
    settings: dict = field(default_factory=dict)  # the per-model numbers the run used, given or published
    cancelled: bool = False
    batch: str = ""  # where a batch is, "image 3 of 12" (the add-on's Run sets it)

    @property
    def label(self) -> str:
        label = STAGE[self.stage].label
        label = f"{label}: {self.message}" if self.message else label
        return f"{self.batch} · {label}" if self.batch else label

    @property
    def headline(self) -> str:
        """What fits on the sidebar's bar: in a batch, where it is and the stage, no detail."""
        return f"{self.batch} · {STAGE[self.stage].label}" if self.batch else self.label


class Job:
    """Runs one image (with more photos of the same object, or a mesh to paint) through the
    worker and keeps the run's status."""

    def __init__(
        self,
        image: ImageSource,
        options: Options,
        engine: Engine = Engine(),
        listener: Callable[[Status], None] | None = None,
        keep_worker: bool = True,
        low_priority: bool = False,
        quads: QuadRequest | None = None,
        views: tuple[ImageSource, ...] = (),
        paint: PaintMesh | None = None,
    ) -> None:
        """``image`` is a file or RGBA pixels; ``listener`` hears each status change in the
        running thread (for printing); ``keep_worker`` keeps the worker, and the model in
        it, for the next run; ``low_priority`` lets Blender's interface go first; ``quads``
        asks for the mesh as quads too; ``views`` are more photos of the same object (files or
        pixels); ``paint`` is a mesh to colour (the engine's ``paint``) instead of making one."""
        self.image = image
        self.views = tuple(views)
        self.paint = paint
        self.options = options
        self.engine = engine
        self._listener = listener
        self._keeps_worker = keep_worker
        self._low_priority = low_priority
        self._quads = quads
        self._token = CancelToken()
        family = family_of(options.model, options.weights_dir)
        self._skipped = ("sample",) if family is not None and not family.sampled else ()  # a bar without a gap
        self._lock = threading.Lock()
        self._status = Status()
        self._thread: threading.Thread | None = None
        self._process: Worker | RemeshProcess | None = None  # what Cancel kills

    def progress(self, stage: str, fraction: float, message: str) -> None:
        """A progress report: the worker's, or Blender's own for the last stage ("import")."""
        with self._lock:
            self._status.stage = stage
            # At most 1: Python 3.13's sum() rounds the stages' shares otherwise than adding them up does.
            done = min(1.0, overall_fraction(stage, fraction, self._skipped))
            self._status.fraction = max(self._status.fraction, done)
            self._status.message = message
            snapshot = Status(**vars(self._status))
        if self._listener is not None:
            self._listener(snapshot)

    def _finish(self, **outcome) -> None:
        with self._lock:
            for key, value in outcome.items():
                setattr(self._status, key, value)
            self._status.finished = True

    def _request(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The run as the worker reads it: each photo a path, or pixels among the arrays (the
        main one "image", the others "view0", "view1"...); a mesh to paint as arrays."""
        arrays: dict[str, np.ndarray] = {}

        def photo(name: str, source: ImageSource) -> str | None:
            if isinstance(source, (str, Path)):
                return str(source)
            arrays[name] = np.asarray(source)
            return None

        fields = dict(
            task="generate" if self.paint is None else "paint",
            image=photo("image", self.image),
            views=[photo(f"view{index}", view) for index, view in enumerate(self.views)],
            options=self.options.to_fields(),
            engine=self.engine.target,
            engine_arguments=self.engine.arguments,
        )
        if self.paint is not None:
            arrays.update(paint_vertices=self.paint.vertices, paint_faces=self.paint.faces)
            if self.paint.corner_uvs is not None:
                arrays["paint_corner_uvs"] = self.paint.corner_uvs
        return fields, arrays

    def _compute(self) -> tuple[Result, dict]:
        if self.engine.target is None and not torch_available():
            require_torch(windows_paths.unpack_problem(Path(__file__).parent))
        fields, arrays = self._request()
        worker = take_worker(self._low_priority)
        self._started(worker)
        try:
            worker.send("run", arrays, **fields)
            while (message := worker.receive()) is not None:
                kind, reply, arrays = message
                if kind == "progress":
                    self.progress(reply["stage"], reply["fraction"], reply["message"])
                elif kind == "error":
                    if reply.get("ending"):  # the worker ends itself (out of memory)
                        worker.stop()
                    raise error_of_kind(reply["error_kind"], reply["message"])
                elif kind == "result":
                    mesh = Mesh(**arrays, rounding=reply["rounding"])
                    result = Result(mesh, Path(reply["model_dir"]), reply["device"], reply["timings"], reply["facts"])
                    return result, reply.get("settings", {})
            self._token.check()
            raise worker.death()
        finally:
            if self._keeps_worker and not self._token.cancelled and worker.alive:
                keep_idle(worker)
            else:
                worker.stop()

    def _started(self, process: Worker | RemeshProcess) -> None:
        """``process`` is the one Cancel kills from now on (at once, if it was pressed already)."""
        with self._lock:
            self._process = process
            if self._token.cancelled:
                process.kill()

    def _make_quads(self, result: Result) -> dict:
        """The quads, or why there are none: a failure here keeps the run's triangles."""
        if self._quads is None:
            return {}
        self.progress("quads", 0.0, "starting Blender")
        started = time.perf_counter()
        try:
            quads = make_quads(
                result.mesh, self._quads, lambda fraction, message: self.progress("quads", fraction, message),
                self._token, self._started, self._low_priority,
            )  # fmt: skip
        except QuadsFailed as failure:
            return {"quads_error": str(failure)}
        result.timings["quads"] = time.perf_counter() - started
        result.timings["total"] = result.timings.get("total", 0.0) + result.timings["quads"]
        return {"quads": quads}

    def run(self) -> None:
        """Run to the end in this thread; the outcome is in ``poll()``."""
        try:
            result, settings = self._compute()
            quads = self._make_quads(result)
        except Cancelled:
            self._finish(cancelled=True)
        except EngineError as exc:
            self._finish(error=str(exc), error_kind=kind_of(exc))
        else:
            self._finish(result=result, settings=settings, **quads)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="openlrm-job", daemon=True)
        self._thread.start()

    def cancel(self, wait: float | None = None) -> None:
        """Stop the run now (the worker is killed); with ``wait``, wait up to that many
        seconds for the run's thread to see it."""
        with self._lock:
            self._token.cancel()
            process = self._process
        if process is not None:
            process.kill()
        if wait is not None and self._thread is not None:
            self._thread.join(wait)

    @property
    def cancel_requested(self) -> bool:
        return self._token.cancelled

    def poll(self) -> Status:
        """A snapshot of the status, safe to read from Blender's main thread."""
        with self._lock:
            return Status(**vars(self._status))
