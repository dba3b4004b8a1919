"""The family contract: what the pipeline asks of a model family, and what a family gives back.

A family's ``recipe`` module holds one ``Recipe``. The pipeline runs it in this order:

1. ``check_model_dir`` / ``download_model``: the folder of its files, checked before loading;
   ``published_settings``: numbers its files publish (TRELLIS's sampler steps, say);
2. ``load_model``: the networks, on a device, in a precision;
3. ``cut_out``: the object's mask, the family's way, for each photo;
4. ``prepare``: the model's input tensors and, where asked, the photo framed as the model
   sees it (for the photo stage);
5. ``make``: the encoding, and a flow model's sampling (the "sample" stage, a step at a
   time); it returns a ``ModelOutput``: a surface the geometry stage meshes (a ``Field``
   to mesh at a level, or a ``CubeGrid`` for FlexiCubes), the colours at any point where the
   model makes them, and the camera it assumes for the photo (None: the photo stage fits one);
6. ``to_output_frame``: the turn from the model's frame into ours (+Z up, the photo seen
   from -Y).

A family that paints a mesh it did not make (TRELLIS) also has ``paint``.

Each family reads only the settings it names in its registry entry (``Family.uses``): the
pipeline hands it a ``Settings`` view that holds those and refuses any other, so a setting
a family ignores is never silently taken, and the sidebar shows each family's own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..camera import Camera
from ..input.prepare import CutOut, MaskFunction
from ..progress import Reporter, StepCallback
from .cube_grid import CubeGrid
from .field import Field
from .settings import Settings

# Colours (V, 3) sRGB in [0, 1] at (V, 3) points of the model's frame, with progress.
ColourField = Callable[[np.ndarray, StepCallback], np.ndarray]
Turn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Prepared:
    """A run's input for the model, and the photo for the photo stage."""

    pixels: torch.Tensor  # (N, 3, H, W) float32 on the CPU: one row per photo of the object
    canvas: np.ndarray | None = None  # (S, S, 4) float: the first photo as the model frames it, the mask as alpha


@dataclass
class ModelOutput:
    """What a family makes of its input."""

    surface: Field | CubeGrid  # meshed by the geometry stage
    colours: ColourField | None = None  # None: a shape only, coloured from the photo
    camera: Camera | None = None  # the photo's camera; None: the photo stage fits one to the shape ...
    view_turns: bool = False  # ... searching the turn about +Z too: the photo's view is not tied to an axis


class Recipe(ABC):
    """How a run uses one family's models. Subclasses are stateless: the loaded networks are
    the ``model`` each call is given."""

    rounding: str = "round"  # how the family's published export makes 8-bit colours (``result.to_u8``)

    @abstractmethod
    def check_model_dir(self, folder: Path) -> Path:
        """The folder, once its files are all there (else a ``WeightsError`` naming the missing one)."""

    @abstractmethod
    def download_model(self, name: str, **hub_options) -> Path:
        """A published name or Hub repository's files, fetched into the Hub cache (sized first)."""

    def published_settings(self, folder: Path) -> dict[str, float]:
        """Numbers the model's own files publish, for the settings a run leaves unset."""
        return {}

    @abstractmethod
    def load_model(self, folder: Path, device: torch.device, dtype: torch.dtype) -> nn.Module:
        """The networks, strictly loaded (every key, every shape)."""

    @abstractmethod
    def cut_out(self, rgba: np.ndarray, remove_background: MaskFunction | None) -> CutOut:
        """The photo with the object's mask in its alpha, the family's published way."""

    @abstractmethod
    def prepare(self, model: nn.Module, cuts: Sequence[CutOut], settings: Settings, canvas: bool) -> Prepared:
        """The model's input for the photos of one object (most families take one), and the
        first photo framed as the model sees it where ``canvas`` asks for it."""

    @abstractmethod
    def make(self, model: nn.Module, prepared: Prepared, settings: Settings, report: Reporter) -> ModelOutput:
        """Encoding (stage "encode") and, for a flow model, sampling (stage "sample")."""

    @abstractmethod
    def to_output_frame(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) points or directions of the model's frame in ours."""

    def paint(
        self,
        model: nn.Module,
        prepared: Prepared,
        vertices: np.ndarray,
        faces: np.ndarray,
        settings: Settings,
        report: Reporter,
    ) -> ColourField:
        """Colours for a mesh the model did not make ((V, 3) points of the model's frame):
        only families that paint have this (``Family.paints``)."""
        raise NotImplementedError(f"{type(self).__name__} does not paint meshes")
