"""Whether PyTorch is there, found without importing it (importing takes seconds).

Every run goes through ``require_torch`` before model code is imported, so a Blender
whose add-on came without PyTorch gets one message with the way forward, not an
ImportError.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from .errors import PyTorchMissing

CPU_WHEEL_INDEX = "https://download.pytorch.org/whl/cpu"


def torch_available() -> bool:
    importlib.invalidate_caches()  # one installed since the last look is found
    return importlib.util.find_spec("torch") is not None


def torch_found() -> tuple[str, Path] | None:
    """The version and folder of the PyTorch a run would import, read from its files."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    try:
        version = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", (folder / "version.py").read_text())[1]
    except (OSError, TypeError):
        version = "(unknown version)"
    return version, folder


def install_command() -> str:
    """How to put PyTorch's CPU build into the Python running this code."""
    return f'"{sys.executable}" -m pip install torch --index-url {CPU_WHEEL_INDEX}'


def missing_torch_message() -> str:
    return (
        f"PyTorch is missing: this Python ({sys.version.split()[0]}) has no torch module, and this build of the "
        "add-on comes without one. Install one in the add-on's preferences (PyTorch > Install PyTorch: CPU, CUDA "
        f"or ROCm, no restart needed), or by hand with: {install_command()}"
    )


def require_torch(reason: str | None = None) -> None:
    """Stop a run that would need PyTorch where there is none; ``reason`` says why, if known."""
    if not torch_available():
        raise PyTorchMissing(reason or missing_torch_message())
