"""OpenLRM v1.1 inference engine: image -> triplanes -> coloured mesh arrays.

Plain PyTorch and NumPy, no ``bpy``: it runs and is tested without Blender.
"""

from .errors import BackgroundModelError, Cancelled, EmptyMeshError, EngineError, ImageError, WeightsError
from .mesh import Mesh
from .pipeline import DEVICES, DTYPES, Options, Result, generate, pick_device, torch_summary, unload_models
from .progress import STAGES, CancelToken, ProgressCallback
from .weights import DEFAULT_MODEL, PUBLISHED_MODELS

__all__ = [
    "BackgroundModelError",
    "Cancelled",
    "CancelToken",
    "DEFAULT_MODEL",
    "DEVICES",
    "DTYPES",
    "EmptyMeshError",
    "EngineError",
    "ImageError",
    "Mesh",
    "Options",
    "ProgressCallback",
    "PUBLISHED_MODELS",
    "Result",
    "STAGES",
    "WeightsError",
    "generate",
    "pick_device",
    "torch_summary",
    "unload_models",
]
