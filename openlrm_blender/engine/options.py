"""What a run is asked to do: the model, the device and every setting of the recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from . import background
from .config import DEFAULT_MODEL
from .errors import EngineError
from .image_source import MAX_MEGAPIXELS

DEVICES = ("auto", "cuda", "mps", "cpu")
PRECISIONS = ("float32", "bfloat16", "float16")  # torch dtype names
_PATHS = ("weights_dir", "cache_dir")


@dataclass
class Options:
    """Everything that decides the result; defaults are the published settings."""

    model: str = DEFAULT_MODEL
    weights_dir: Path | None = None  # a local model folder; overrides ``model``
    revision: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    offline: bool | None = None  # None: huggingface_hub's own setting (HF_HUB_OFFLINE)
    device: str = "auto"
    dtype: str = "float32"
    remove_background: bool = True
    background_model: str = background.DEFAULT_MODEL  # a name of background.MODELS, or an .onnx file
    recenter: bool = True
    foreground_ratio: float = 0.8
    input_size: int = 0  # 0: the model's published size
    camera_distance: float = 2.0
    resolution: int = 384
    threshold: float = 3.0
    dense: bool = False
    max_megapixels: float = MAX_MEGAPIXELS  # larger image files are refused before decoding
    # After marching cubes, each optional (0: off):
    min_piece: float = 0.0  # drop disconnected pieces with less than this share of the faces
    smooth: int = 0  # Taubin smoothing iterations
    faces: int = 0  # simplify to about this many faces
    texture_size: int = 0  # UV-unwrap and bake a square colour texture of this many pixels

    def to_fields(self) -> dict:
        """Plain values (paths as text), to send to the worker process."""
        return {name: str(value) if name in _PATHS and value is not None else value for name, value in asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict) -> Options:
        return cls(**{name: Path(value) if name in _PATHS and value is not None else value for name, value in fields.items()})

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise EngineError(f"unknown device {self.device!r}: use one of {', '.join(DEVICES)}")
        if self.dtype not in PRECISIONS:
            raise EngineError(f"unknown precision {self.dtype!r}: use one of {', '.join(PRECISIONS)}")
        if not 0.0 < self.foreground_ratio <= 1.0:
            raise EngineError(f"foreground ratio must be in (0, 1], got {self.foreground_ratio}")
        if self.input_size < 0 or (self.input_size and self.input_size % 14):
            raise EngineError(f"input size must be a multiple of 14 (or 0 for the model's own), got {self.input_size}")
        if not 8 <= self.resolution <= 1024:
            raise EngineError(f"mesh resolution must be between 8 and 1024, got {self.resolution}")
        if self.max_megapixels <= 0:
            raise EngineError(f"the image size limit must be positive, got {self.max_megapixels} megapixels")
        if not 0.0 <= self.min_piece < 1.0:
            raise EngineError(f"the smallest piece kept must be a share in [0, 1), got {self.min_piece}")
        if self.smooth < 0 or self.faces < 0:
            raise EngineError(f"smoothing and the face count cannot be negative, got {self.smooth} and {self.faces}")
        if self.texture_size and not 64 <= self.texture_size <= 8192:
            raise EngineError(f"texture size must be 0 (vertex colours) or 64 to 8192 pixels, got {self.texture_size}")
        if self.camera_distance <= 0:
            raise EngineError(f"camera distance must be positive, got {self.camera_distance}")
