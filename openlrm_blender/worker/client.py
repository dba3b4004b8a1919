"""The Blender side of the process boundary: starts the model's worker process
(``worker.server``), talks to it over its pipes (``worker.protocol``), and keeps the idle
one, with the model loaded in it, between runs. Never touches ``bpy``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from ..engine.errors import MEMORY_ADVICE, EngineError, ModelProcessLost, OutOfMemory
from .protocol import read_message, write_message

# The worker's first line: the add-on's own sys.path (Blender's modules and the bundled
# wheels), then its module; -I keeps the user's PYTHON* variables and site out of it.
BOOTSTRAP = (
    "import importlib, json, sys; sys.path[:] = json.loads(sys.argv[1]); importlib.import_module(sys.argv[2]).main()"
)


class Worker:
    """The worker process, and the last lines it wrote to stderr (passed on to Blender's)."""

    def __init__(self, low_priority: bool) -> None:
        package = Path(__file__).parent.parent  # the add-on's package, importable from its parent folder
        paths = [str(package.parent), *sys.path]
        flags = 0
        if sys.platform == "win32":  # no console window; Blender's interface before the model
            flags = subprocess.CREATE_NO_WINDOW | (subprocess.BELOW_NORMAL_PRIORITY_CLASS if low_priority else 0)
        # sys.executable: Blender's own Python (the venv's for bpy from PyPI)
        command = [sys.executable, "-I", "-c", BOOTSTRAP, json.dumps(paths), f"{package.name}.worker.server"]
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
        with contextlib.suppress(OSError):
            write_message(self.process.stdin, kind, arrays, **fields)

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

    def death(self) -> EngineError:
        """Why the worker ended without an answer, in words."""
        code = self.process.wait()
        if code == -getattr(signal, "SIGKILL", 9):
            return OutOfMemory(
                "the model process was killed by the system (SIGKILL), most likely because memory ran out; Blender "
                f"and the scene are unchanged; {MEMORY_ADVICE}"
            )
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        return ModelProcessLost(
            f"the model process stopped unexpectedly (exit status {code}){f': {last}' if last else ''}; Blender and "
            "the scene are unchanged (its output is in Blender's console)"
        )


_idle: Worker | None = None  # kept between runs with the model loaded in it
_idle_lock = threading.Lock()


def take_worker(low_priority: bool) -> Worker:
    """The idle worker if it fits, else a new one."""
    global _idle
    with _idle_lock:
        worker, _idle = _idle, None
    if worker is not None and worker.alive and worker.low_priority == low_priority:
        return worker
    if worker is not None:
        worker.stop()
    return Worker(low_priority)


def keep_idle(worker: Worker | None) -> None:
    """``worker`` becomes the idle one; the one it replaces is ended."""
    global _idle
    with _idle_lock:
        previous, _idle = _idle, worker
    if previous is not None:
        previous.stop()


def free_models() -> None:
    """End the idle worker: all the model's memory goes back to the system at once."""
    keep_idle(None)
