"""OpenLRM v1.1 inference engine: image -> triplanes -> coloured mesh arrays.

Plain PyTorch and NumPy, no ``bpy``: it runs and is tested without Blender. Importing
this package loads no PyTorch (enabling the add-on stays fast, and works where PyTorch
is missing); ``engine.pipeline.generate`` and the model modules do.
"""

from .errors import (
    BackgroundModelError,
    Cancelled,
    EmptyMeshError,
    EngineError,
    ImageError,
    PyTorchMissing,
    WeightsError,
)
from .models.registry import DEFAULT_MODEL, PUBLISHED_MODELS
from .options import DEVICES, PRECISIONS, Options
from .progress import STAGES, CancelToken, ProgressCallback
from .pytorch import missing_torch_message, require_torch, torch_available
from .result import Mesh, Result

__all__ = [
    "DEFAULT_MODEL",
    "DEVICES",
    "PRECISIONS",
    "PUBLISHED_MODELS",
    "STAGES",
    "BackgroundModelError",
    "CancelToken",
    "Cancelled",
    "EmptyMeshError",
    "EngineError",
    "ImageError",
    "Mesh",
    "Options",
    "ProgressCallback",
    "PyTorchMissing",
    "Result",
    "WeightsError",
    "missing_torch_message",
    "require_torch",
    "torch_available",
]
