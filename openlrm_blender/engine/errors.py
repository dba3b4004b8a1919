"""Errors the engine raises on purpose, and the one sentence for running out of memory.

Every message is one line that names the file or value at fault, so the Blender
add-on can show it in the status bar as it is.
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
