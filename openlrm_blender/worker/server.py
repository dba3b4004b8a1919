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

import numpy as np

from ..engine.errors import (
    DeviceFailure,
    EngineError,
    InternalError,
    OutOfMemory,
    device_failure_message,
    kind_of,
    out_of_memory_message,
)
from ..engine.input.mesh_file import PaintMesh
from ..engine.models.registry import family_of_folder
from ..engine.options import SETTINGS, Options
from ..engine.progress import CancelToken
from .protocol import read_message, write_message


def _engine(target: str | None, task: str, progress):
    """The function a run calls: the real pipeline's ``task`` ("generate" or "paint"; PyTorch
    loads here, on the process's first run), or one named "module:function" (tests)."""
    if target:
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)
    if "torch" not in sys.modules:
        progress("startup", 0.0, "first run of this session (longest after installing)")
    from ..engine import pipeline
    from ..engine.runtime import torch_summary

    progress("startup", 1.0, torch_summary())
    return getattr(pipeline, task)


def _photo(path: str | None, arrays: dict, name: str) -> Path | np.ndarray:
    return arrays[name] if path is None else Path(path)


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
        task = fields.get("task", "generate")  # a request of one photo names neither
        engine = _engine(fields["engine"], task, progress)
        image = _photo(fields["image"], arrays, "image")
        options = Options.from_fields(fields["options"])
        arguments = dict(progress=progress, cancel=CancelToken(), **fields["engine_arguments"])
        views = [_photo(path, arrays, f"view{index}") for index, path in enumerate(fields.get("views", ()))]
        if views:  # only then: an engine of one photo (a test's) need not take them
            arguments["views"] = views
        if task == "paint":
            mesh = PaintMesh(arrays["paint_vertices"], arrays["paint_faces"], arrays.get("paint_corner_uvs"))
            result = engine(image, mesh, options, **arguments)
        else:
            result = engine(image, options, **arguments)
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
    # A painted mesh's texture comes without UVs: they are the caller's own.
    arrays = {name: getattr(mesh, name) for name in ("vertices", "faces", "colours", "uvs", "texture")}
    arrays = {name: array for name, array in arrays.items() if array is not None}
    write_message(
        replies,
        "result",
        arrays,
        model_dir=str(result.model_dir),
        rounding=mesh.rounding,
        device=result.device,
        timings=result.timings,
        facts=result.facts,
        settings=_settings_used(options, result.model_dir),
    )
    return True


def _settings_used(options: Options, model_dir: Path) -> dict:
    """The per-model numbers the run used, the unset ones as the pipeline takes them (the
    family's published values, then its folder's), so that Blender can record them."""
    if "torch" not in sys.modules:  # no model ran (a test's engine)
        return {}
    try:
        family = family_of_folder(Path(model_dir))
    except EngineError:
        return {}
    used = options.for_family(family.settings | family.recipe().published_settings(Path(model_dir)))
    return {name: getattr(used, name) for name in family.uses if name in SETTINGS and SETTINGS[name].per_model}


def measure_rate(fields: dict, replies: BinaryIO) -> None:
    """This machine's rates (GFLOP/s: matrix products, fused attention) in each precision asked
    for (None for one its CPU only emulates: runs refuse it): a short PyTorch timing, under a
    second, for the add-on's estimate of a run's time (``engine.models.estimate``), taken where
    runs compute."""
    try:
        import torch

        from ..engine.runtime import cpu_has_bfloat16, measure_speed

        native = ("float32", "bfloat16") if cpu_has_bfloat16() else ("float32",)
        speeds = {name: measure_speed(name) if name in native else None for name in fields["precisions"]}
    except Exception as error:  # noqa: BLE001 (a failed timing is an answer; the process goes on)
        message = f"timing this machine's matrix products failed: {type(error).__name__}: {error}"
        write_message(replies, "error", error_kind=InternalError.__name__, message=message)
        return
    gflops, attention = ({name: None if speed is None else getattr(speed, part) for name, speed in speeds.items()}
                         for part in ("products", "attention"))  # fmt: skip
    write_message(replies, "rate", gflops=gflops, attention_gflops=attention, torch=torch.__version__)


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
        if kind == "rate":
            measure_rate(fields, replies)
