"""Where a run computes: the device, the precision, and the loaded model kept between runs."""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import nn

from .errors import EngineError
from .models.registry import family_of_folder
from .options import PRECISIONS

DTYPES = {name: getattr(torch, name) for name in PRECISIONS}


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU for "auto"; a named device must be there."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise EngineError(f"CUDA was asked for but this PyTorch ({torch.__version__}) sees no CUDA GPU")
    if name == "mps" and not mps:
        raise EngineError(f"Apple MPS was asked for but this PyTorch ({torch.__version__}) cannot use it here")
    return torch.device(name)


def torch_summary() -> str:
    """Which PyTorch runs the model and what it can use, for people to read."""
    devices = ["CPU"]
    if torch.cuda.is_available():
        devices.append(f"CUDA {torch.version.cuda}")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("MPS")
    return f"PyTorch {torch.__version__} ({', '.join(devices)}) from {Path(torch.__file__).parent}"


_models: dict[tuple[Path, str, str], nn.Module] = {}
_models_lock = threading.Lock()


def get_model(folder: Path, device: torch.device, dtype: str) -> nn.Module:
    """The loaded model for these files, device and precision, loading it once."""
    key = (folder.resolve(), str(device), dtype)
    with _models_lock:
        if key not in _models:
            _models.clear()  # one model at a time: they are large
            _models[key] = load_model(folder, device, DTYPES[dtype])
        return _models[key]


def load_model(folder: Path, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The model in ``folder``, of whichever family its files say."""
    return family_of_folder(folder).recipe().load_model(folder, device, dtype)


def unload_models() -> None:
    """Free the cached models' memory."""
    with _models_lock:
        _models.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
