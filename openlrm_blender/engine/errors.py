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


def out_of_memory_message(error: BaseException) -> str | None:
    """Our sentence for an allocation failure (Python's, or PyTorch's on the CPU or a GPU);
    None for any other error. The command line and the add-on's worker both say it."""
    text = str(error)
    if not isinstance(error, MemoryError) and "can't allocate memory" not in text and "out of memory" not in text:
        return None
    asked = re.search(r"allocate (\d+) bytes|allocate ([\d.]+) ([KMG])iB", text)  # PyTorch's CPU / CUDA wording
    if asked:
        gigabytes = int(asked[1]) / 2**30 if asked[1] else float(asked[2]) / 1024 ** "GMK".index(asked[3])
    size = f" ({gigabytes:.1f} GB asked for at once)" if asked else ""
    return f"out of memory: the run needed more memory than was free{size}; {MEMORY_ADVICE}"
