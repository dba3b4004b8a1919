"""What a run gives back: mesh arrays, and where and how fast they were made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Mesh:
    vertices: np.ndarray  # float32 (V, 3), x right, y away from the input camera, z up
    faces: np.ndarray  # int32 (F, 3), counter-clockwise seen from outside
    colors: np.ndarray  # float32 (V, 3), sRGB values in [0, 1] as the model produced them

    @property
    def colors_u8(self) -> np.ndarray:
        """8-bit colours the published way: floor(colour * 255)."""
        return np.clip(np.floor(self.colors * 255.0), 0, 255).astype(np.uint8)


@dataclass
class Result:
    mesh: Mesh
    model_dir: Path
    device: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds by stage
