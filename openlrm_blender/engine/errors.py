"""Errors the engine raises on purpose.

Every message is one line that names the file or value at fault, so the Blender
add-on can show it in the status bar as it is.
"""


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
