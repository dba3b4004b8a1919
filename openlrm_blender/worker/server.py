"""The model's own process: Blender starts it, sends runs on its stdin and reads progress
and results from its stdout (``protocol``). It never imports ``bpy``.

A run that runs out of memory or crashes in a native library ends this process, not
Blender, so the user's unsaved scene is never at stake; Cancel kills it, which acts at
once in every stage, native calls included. Between runs it keeps the loaded model.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import BinaryIO

from ..engine.errors import (
    DeviceFailure,
    EngineError,
    InternalError,
    OutOfMemory,
    device_failure_message,
    kind_of,
    out_of_memory_message,
)
from ..engine.options import Options
from ..engine.progress import CancelToken
from .protocol import read_message, write_message


def _engine(target: str | None, progress):
    """The function a run calls: the real pipeline (PyTorch loads here, on the process's
    first run), or one named "module:function" (tests)."""
    if target:
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)
    if "torch" not in sys.modules:
        progress("startup", 0.0, "first run of this session (longest after installing)")
    from ..engine.pipeline import generate
    from ..engine.runtime import torch_summary

    progress("startup", 1.0, torch_summary())
    return generate


def run(fields: dict, arrays: dict, replies: BinaryIO) -> bool:
    """One run, its progress and outcome written to ``replies``; False when this process
    should end (out of memory, or a GPU that failed)."""
    try:
        return _run(fields, arrays, replies)
    finally:
        if "torch" in sys.modules:  # an idle worker keeps its weights on the GPU, not the run's peak
            from ..engine.runtime import free_cached_memory

            free_cached_memory()


def _run(fields: dict, arrays: dict, replies: BinaryIO) -> bool:
    def progress(stage: str, fraction: float, message: str = "") -> None:
        write_message(replies, "progress", stage=stage, fraction=fraction, message=message)

    try:
        engine = _engine(fields["engine"], progress)
        image = arrays["image"] if "image" in arrays else Path(fields["image"])
        options = Options.from_fields(fields["options"])
        result = engine(image, options, progress=progress, cancel=CancelToken(), **fields["engine_arguments"])
    except EngineError as error:
        write_message(replies, "error", error_kind=kind_of(error), message=str(error))
        return True
    except Exception as error:  # noqa: BLE001 (every failure becomes a reply, MemoryError included)
        # The process ends after either: after a failed allocation its heap is in doubt, and
        # a failed GPU kernel leaves the device unusable for the rest of the process.
        for kind, message in (
            (OutOfMemory, out_of_memory_message(error)),
            (DeviceFailure, device_failure_message(error)),
        ):
            if message is not None:
                message = f"{message}; Blender and the scene are unchanged"
                write_message(replies, "error", error_kind=kind.__name__, message=message, ending=True)
                return False
        traceback.print_exc()  # a bug: its traceback goes to Blender's console
        message = f"internal error: {type(error).__name__}: {error}"
        write_message(replies, "error", error_kind=InternalError.__name__, message=message)
        return True
    mesh = result.mesh
    arrays = {"vertices": mesh.vertices, "faces": mesh.faces, "colours": mesh.colours}
    if mesh.textured:
        arrays.update(uvs=mesh.uvs, texture=mesh.texture)
    write_message(
        replies,
        "result",
        arrays,
        model_dir=str(result.model_dir),
        rounding=mesh.rounding,
        device=result.device,
        timings=result.timings,
        facts=result.facts,
    )
    return True


def _first_to_go() -> None:
    """Ask Linux's out-of-memory killer to pick this process before any other (Blender)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def main() -> None:
    # Apple MPS lacks some of PyTorch's operators: run them on the CPU instead of failing
    # (read when PyTorch is imported, which this process does on its first run).
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    # The replies get a stream of their own; whatever a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if "--low-priority" in sys.argv and hasattr(os, "nice"):
        os.nice(10)  # Blender's interface first; the model takes the rest of the CPU
    _first_to_go()
    requests = sys.stdin.buffer
    while (message := read_message(requests)) is not None:
        kind, fields, arrays = message
        if kind == "run" and not run(fields, arrays, replies):
            break
