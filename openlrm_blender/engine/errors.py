"""Errors the engine raises on purpose, and the one sentence for running out of memory.

Every message is one line that names the file or value at fault, so the Blender
add-on can show it in the status bar as it is. Errors cross the process boundary as
their kind (the class name) and message, so the add-on tells them apart by kind, never
by their words.
"""

from __future__ import annotations

import re

MEMORY_ADVICE = "lower the grid resolution or the texture size, or choose a smaller model or bfloat16 precision"


class EngineError(Exception):
    """Base class: a problem the user can act on, not a bug."""


class WeightsError(EngineError):
    """The model's files are missing, corrupt or do not fit the architecture."""


class ImageError(EngineError):
    """The input image cannot be used."""


class MeshFileError(EngineError):
    """The mesh to paint cannot be read, or cannot be painted."""


class BackgroundModelError(EngineError):
    """The background-removal model is not available."""


class EmptyMeshError(EngineError):
    """Nothing in the volume reached the density threshold."""


class Cancelled(EngineError):
    """The caller asked the run to stop."""


class PyTorchMissing(EngineError):
    """No PyTorch can be imported: the model cannot run."""


class Offline(EngineError):
    """Something must be downloaded, and downloads are off."""


class DownloadError(EngineError):
    """A file could not be downloaded, or came corrupt."""


class OutOfMemory(EngineError):
    """A run needed more memory than was free."""


class DeviceFailure(EngineError):
    """The GPU failed (a CUDA error): the process that met it cannot use the device again."""


class ModelProcessLost(EngineError):
    """The model's worker process ended without an answer (a native crash)."""


class InternalError(EngineError):
    """A bug: an exception the engine did not raise on purpose."""


def kind_of(error: EngineError) -> str:
    return type(error).__name__


def _kinds(base: type[EngineError]) -> dict[str, type[EngineError]]:
    found = {base.__name__: base}
    for subclass in base.__subclasses__():
        found.update(_kinds(subclass))
    return found


def error_of_kind(kind: str, message: str) -> EngineError:
    """The error a message of this kind stands for (an unknown kind: a plain EngineError)."""
    return _kinds(EngineError).get(kind, EngineError)(message)


# Allocation failures that do not say "out of memory": cuBLAS's and cuDNN's own.
_ALLOCATION_FAILURES = (
    "can't allocate memory",
    "out of memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
)
# PyTorch's sizes: the CPU's "allocate 123 bytes", CUDA's "Tried to allocate 2.00 GiB",
# Apple MPS's "Tried to allocate 256.00 MB".
_ASKED = re.compile(r"allocate (\d+) bytes|allocate ([\d.]+) ([KMGT])i?B")
_GIGABYTES_PER = {"K": 2**-20, "M": 2**-10, "G": 1.0, "T": 2**10}
# A failed kernel leaves the CUDA context unusable: every later call in the process fails.
_DEVICE_FAILURES = ("CUDA error", "CUBLAS_STATUS", "CUDNN_STATUS", "device-side assert", "illegal memory access")


def out_of_memory_message(error: BaseException) -> str | None:
    """Our sentence for an allocation failure (Python's, or PyTorch's on the CPU, CUDA or
    Apple MPS); None for any other error. The command line and the add-on's worker both say it."""
    text = str(error)
    named = isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"
    if not named and not any(failure in text for failure in _ALLOCATION_FAILURES):
        return None
    asked = _ASKED.search(text)
    size = ""
    if asked:
        gigabytes = int(asked[1]) / 2**30 if asked[1] else float(asked[2]) * _GIGABYTES_PER[asked[3]]
        size = f" ({gigabytes:.1f} GB asked for at once)"
    return f"out of memory: the run needed more memory than was free{size}; {MEMORY_ADVICE}"


def device_failure_message(error: BaseException) -> str | None:
    """Our sentence for a GPU that failed mid-run (PyTorch's AcceleratorError, or a CUDA,
    cuBLAS or cuDNN error); None for any other error."""
    text = str(error)
    if type(error).__name__ != "AcceleratorError" and not any(failure in text for failure in _DEVICE_FAILURES):
        return None
    first = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
    return (
        f"the GPU failed ({first}); the model's process starts afresh for the next run. If it happens again, "
        "update the GPU driver or choose the CPU as the device"
    )
