"""What the add-on does off Blender's main thread, never touching ``bpy``: a generation
run, computed in the model's own process (``engine/worker.py``), and a model download.

A thread of Blender's process sends the run to the worker and reads its replies;
Blender's main thread asks ``poll()`` on each timer tick for the latest progress and, at
the end, the result or the error. The model never runs in Blender's process: its
imports and loops cannot hold Blender's interpreter, running out of memory or crashing
ends only the worker, and Cancel kills the worker, which acts at once in any stage.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import windows_paths
from .engine.errors import MEMORY_ADVICE
from .engine import CancelToken, Cancelled, EngineError, Mesh, Options, Result, background, require_torch, torch_available
from .engine.image_source import ImageSource
from .engine.protocol import read_message, write_message

# Share of the whole bar each stage fills; "startup" (the worker's PyTorch import, on a
# fresh worker only) comes before the engine's stages, "import" in Blender after them.
STAGE_WEIGHTS = {
    "startup": 0.05, "model": 0.10, "preprocess": 0.05, "encode": 0.35, "mesh": 0.35, "surface": 0.05, "import": 0.05
}  # fmt: skip
STAGE_LABELS = {
    "startup": "Loading PyTorch",
    "model": "Getting the model",
    "preprocess": "Preparing image",
    "encode": "Encoding",
    "mesh": "Building mesh",
    "surface": "Finishing the surface",
    "import": "Importing",
}

# The worker's first line: the add-on's own sys.path (Blender's modules and the bundled
# wheels), then its module; -I keeps the user's PYTHON* variables and site out of it.
BOOTSTRAP = "import importlib, json, sys; sys.path[:] = json.loads(sys.argv[1]); importlib.import_module(sys.argv[2]).main()"


@dataclass(frozen=True)
class Engine:
    """What the worker runs: the published pipeline, or a function that tests name."""

    target: str | None = None  # "module:function"; None: engine.pipeline.generate
    arguments: dict = field(default_factory=dict)


class Worker:
    """The worker process, and the last lines it wrote to stderr (passed on to Blender's)."""

    def __init__(self, low_priority: bool) -> None:
        package = Path(__file__).parent
        paths = [str(package.parent), *sys.path]
        flags = 0
        if sys.platform == "win32":  # no console window; Blender's interface before the model
            flags = subprocess.CREATE_NO_WINDOW | (subprocess.BELOW_NORMAL_PRIORITY_CLASS if low_priority else 0)
        # sys.executable: Blender's own Python (the venv's for bpy from PyPI)
        command = [sys.executable, "-I", "-c", BOOTSTRAP, json.dumps(paths), f"{package.name}.engine.worker"]
        try:
            self.process = subprocess.Popen(
                command + (["--low-priority"] if low_priority else []),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                creationflags=flags,
            )
        except OSError as error:
            raise EngineError(f"could not start the model process with {sys.executable}: {error}") from error
        self.low_priority = low_priority
        self._killed = False
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._pass_on_stderr, name="openlrm-worker-stderr", daemon=True).start()

    def _pass_on_stderr(self) -> None:
        for line in self.process.stderr:
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            print(f"OpenLRM worker: {text}", file=sys.stderr, flush=True)

    @property
    def alive(self) -> bool:
        """Running, and not yet killed (a killed one may take a moment to end)."""
        return not self._killed and self.process.poll() is None

    def send(self, kind: str, arrays: dict[str, np.ndarray] | None = None, **fields) -> None:
        """Write a request; a worker that has died shows up at the next ``receive``."""
        try:
            write_message(self.process.stdin, kind, arrays, **fields)
        except OSError:
            pass

    def receive(self) -> tuple[str, dict, dict[str, np.ndarray]] | None:
        return read_message(self.process.stdout)

    def kill(self) -> None:
        """End it now, from any thread; its replies stop and ``receive`` gives None."""
        if self.alive:
            self._killed = True
            self.process.kill()

    def stop(self) -> None:
        """Kill it and reap it in the background: the system takes a while (0.2 s for a
        base model's 1.5 GB) to free a killed process's memory, and nobody waits for that."""
        self.kill()
        threading.Thread(target=self.process.wait, name="openlrm-worker-reaper", daemon=True).start()

    def death_message(self) -> str:
        """Why the worker ended without an answer, in words."""
        code = self.process.wait()
        if code == -getattr(signal, "SIGKILL", 9):
            return (
                "the model process was killed by the system (SIGKILL), most likely because memory ran out; Blender "
                f"and the scene are unchanged; {MEMORY_ADVICE}"
            )
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        return (
            f"the model process stopped unexpectedly (exit status {code}){f': {last}' if last else ''}; Blender and "
            "the scene are unchanged (its output is in Blender's console)"
        )


_idle: Worker | None = None  # kept between runs with the model loaded in it
_idle_lock = threading.Lock()


def _take_worker(low_priority: bool) -> Worker:
    global _idle
    with _idle_lock:
        worker, _idle = _idle, None
    if worker is not None and worker.alive and worker.low_priority == low_priority:
        return worker
    if worker is not None:
        worker.stop()
    return Worker(low_priority)


def _keep_worker(worker: Worker | None) -> None:
    """``worker`` becomes the idle one; the one it replaces is ended."""
    global _idle
    with _idle_lock:
        previous, _idle = _idle, worker
    if previous is not None:
        previous.stop()


def free_models() -> None:
    """End the idle worker: all the model's memory goes back to the system at once."""
    _keep_worker(None)


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
    stage: str = "startup"
    fraction: float = 0.0  # of the whole run
    message: str = ""
    finished: bool = False
    result: Result | None = None
    error: str | None = None  # one line for the status bar
    cancelled: bool = False

    @property
    def label(self) -> str:
        return f"{STAGE_LABELS.get(self.stage, self.stage)}: {self.message}" if self.message else STAGE_LABELS.get(self.stage, self.stage)


class Download:
    """A background removal model fetched in a thread of Blender's process (downloading
    needs no PyTorch and holds no lock for long); ``fraction`` and the outcome for the UI."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fraction = 0.0
        self.finished = False
        self.error: str | None = None
        self.path: Path | None = None
        self._token = CancelToken()

    def _progress(self, done: int, total: int) -> None:
        self._token.check()
        self.fraction = done / total if total else 0.0

    def run(self) -> None:
        try:
            self.path = background.ensure_model(self.name, progress=self._progress)
        except Cancelled:
            self.error = f"the download of {self.name} was cancelled (it goes on from there next time)"
        except EngineError as error:
            self.error = str(error)
        self.finished = True

    def start(self) -> None:
        threading.Thread(target=self.run, name="openlrm-download", daemon=True).start()

    def cancel(self) -> None:
        self._token.cancel()


class Job:
    """Runs one image through the worker and keeps the run's status."""

    def __init__(
        self,
        image: ImageSource,
        options: Options,
        engine: Engine = Engine(),
        listener: Callable[[Status], None] | None = None,
        keep_worker: bool = True,
        low_priority: bool = False,
    ) -> None:
        """``image`` is a file or RGBA pixels; ``listener`` hears each status change in the
        running thread (for printing); ``keep_worker`` keeps the worker, and the model in
        it, for the next run; ``low_priority`` lets Blender's interface go first."""
        self.image = image
        self.options = options
        self.engine = engine
        self._listener = listener
        self._keep_worker = keep_worker
        self._low_priority = low_priority
        self._token = CancelToken()
        self._lock = threading.Lock()
        self._status = Status()
        self._thread: threading.Thread | None = None
        self._worker: Worker | None = None

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

    def _request(self) -> tuple[dict, dict[str, np.ndarray]]:
        image = self.image
        arrays = {"image": np.asarray(image)} if not isinstance(image, (str, Path)) else {}
        fields = dict(
            image=None if arrays else str(image),
            options=self.options.to_fields(),
            engine=self.engine.target,
            engine_arguments=self.engine.arguments,
        )
        return fields, arrays

    def _compute(self) -> Result:
        if self.engine.target is None and not torch_available():
            require_torch(windows_paths.unpack_problem(Path(__file__).parent))
        fields, arrays = self._request()
        worker = _take_worker(self._low_priority)
        with self._lock:
            self._worker = worker
            if self._token.cancelled:
                worker.kill()
        try:
            worker.send("run", arrays, **fields)
            while (message := worker.receive()) is not None:
                kind, reply, arrays = message
                if kind == "progress":
                    self._progress(reply["stage"], reply["fraction"], reply["message"])
                elif kind == "error":
                    if reply.get("ending"):  # the worker ends itself (out of memory)
                        worker.stop()
                    raise EngineError(reply["message"])
                elif kind == "result":
                    mesh = Mesh(**arrays)
                    return Result(mesh, Path(reply["model_dir"]), reply["device"], reply["timings"])
            self._token.check()
            raise EngineError(worker.death_message())
        finally:
            if self._keep_worker and not self._token.cancelled and worker.alive:
                _keep_worker(worker)
            else:
                worker.stop()

    def run(self) -> None:
        """Run to the end in this thread; the outcome is in ``poll()``."""
        try:
            result = self._compute()
        except Cancelled:
            self._finish(cancelled=True)
        except EngineError as exc:
            self._finish(error=str(exc))
        else:
            self._finish(result=result)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="openlrm-job", daemon=True)
        self._thread.start()

    def cancel(self, wait: float | None = None) -> None:
        """Stop the run now (the worker is killed); with ``wait``, wait up to that many
        seconds for the run's thread to see it."""
        with self._lock:
            self._token.cancel()
            worker = self._worker
        if worker is not None:
            worker.kill()
        if wait is not None and self._thread is not None:
            self._thread.join(wait)

    @property
    def cancel_requested(self) -> bool:
        return self._token.cancelled

    def poll(self) -> Status:
        """A snapshot of the status, safe to read from Blender's main thread."""
        with self._lock:
            return Status(**vars(self._status))
