"""What a run gives back: mesh arrays, and where and how fast they were made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def to_u8(colours: np.ndarray, rounding: str = "floor") -> np.ndarray:
    """8-bit colours the published way: floor(colour * 255) for OpenLRM, round for TripoSR."""
    scaled = colours * 255.0
    return np.clip(np.floor(scaled) if rounding == "floor" else np.round(scaled), 0, 255).astype(np.uint8)


@dataclass
class Mesh:
    vertices: np.ndarray  # float32 (V, 3), x right, y away from the input camera, z up
    faces: np.ndarray  # int32 (F, 3), counter-clockwise seen from outside
    colours: np.ndarray  # float32 (V, 3), sRGB values in [0, 1] as the model produced them
    uvs: np.ndarray | None = None  # float32 (V, 2) in [0, 1], v up, when textured
    texture: np.ndarray | None = None  # uint8 (S, S, 3) sRGB, row 0 at the top, when textured
    # float32 (V, 3) unit, where the faces round a vertex do not tell them: a textured mesh's
    # vertices are cut along the charts' seams, and its normals are the uncut surface's.
    normals: np.ndarray | None = None
    rounding: str = "floor"  # how the model family's published export makes 8-bit colours (to_u8)

    @property
    def colours_u8(self) -> np.ndarray:
        return to_u8(self.colours, self.rounding)

    @property
    def textured(self) -> bool:
        return self.texture is not None


@dataclass
class Result:
    mesh: Mesh
    model_dir: Path
    device: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds by stage
    # What else the run found: "queries" (the field's values computed for the mesh),
    # "camera_overlap" (how well a camera fitted to a shape matched the photo's mask).
    facts: dict[str, float] = field(default_factory=dict)
