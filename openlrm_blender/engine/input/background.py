"""Background removal with rembg's models, run directly with onnxruntime.

The rembg package itself is not a dependency: its current releases need NumPy 2.3
(Blender 4.2 to 5.0 ship 1.26) and pull in numba, SciPy and scikit-image for matting
features this add-on does not use. Its model files, the folders it keeps them in and
each model's pre- and post-processing are what give rembg's masks, so they are kept:
a model rembg downloaded is used here, and one downloaded here serves rembg.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import BackgroundModelError, Offline

if TYPE_CHECKING:
    from .download import ByteProgress

RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0"
# A mirror of rembg's release files (a company's, or a test server) instead of GitHub.
RELEASES_VARIABLE = "OPENLRM_BACKGROUND_MODELS_URL"


@dataclass(frozen=True)
class Recipe:
    """How rembg feeds a model and reads its mask."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


U2NET_RECIPE = Recipe(320, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
ISNET_RECIPE = Recipe(1024, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0))
RECIPES = {recipe.input_size: recipe for recipe in (U2NET_RECIPE, ISNET_RECIPE)}


@dataclass(frozen=True)
class BackgroundModel:
    name: str
    md5: str  # rembg's published checksum
    megabytes: int
    description: str

    @property
    def url(self) -> str:
        return f"{os.environ.get(RELEASES_VARIABLE) or RELEASES}/{self.name}.onnx"


MODELS = {
    model.name: model
    for model in (
        BackgroundModel("u2net", "60024c5c889badc19c04ad937298a77b", 168, "rembg's default, for general objects"),
        BackgroundModel("isnet-general-use", "fc16ebd8b0c10d971d3513d564d01e29", 171, "sharper edges, slower"),
        BackgroundModel("u2netp", "8e83ca70e441ab06c318d82300c84806", 5, "small and fast, coarser"),
    )
}
DEFAULT_MODEL = "u2net"


def legacy_home() -> Path:
    """rembg's old flat folder, still read: ``$U2NET_HOME``, else ``~/.u2net`` (under
    ``$XDG_DATA_HOME`` when that is set, as rembg has it)."""
    return Path(os.environ.get("U2NET_HOME") or Path(os.environ.get("XDG_DATA_HOME", "~")) / ".u2net").expanduser()


def rembg_home() -> Path:
    """Where rembg 2.0.86 keeps its data: ``$U2NET_HOME`` wins, then ``$REMBG_HOME``, then
    ``$XDG_DATA_HOME/rembg``, then ``~/.rembg``."""
    if os.environ.get("U2NET_HOME"):
        return legacy_home()
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(os.environ.get("REMBG_HOME") or (Path(xdg) / "rembg" if xdg else "~/.rembg")).expanduser()


def model_path(name: str) -> Path:
    """Where this model is downloaded to: ``<home>/models/<name>/<name>.onnx``."""
    return rembg_home() / "models" / name / f"{name}.onnx"


def find_model(name: str) -> Path | None:
    """A copy of the model already on this machine (rembg's folder, then its old one)."""
    for path in (model_path(name), legacy_home() / f"{name}.onnx"):
        if path.is_file():
            return path
    return None


def _known(name: str) -> BackgroundModel:
    if name not in MODELS:
        raise BackgroundModelError(
            f"unknown background model {name!r}: use {', '.join(MODELS)} or the path of an .onnx file"
        )
    return MODELS[name]


def ensure_model(name: str, offline: bool = False, progress: ByteProgress | None = None) -> Path:
    """The model's file, downloaded on first use from rembg's release files."""
    model = _known(name)
    found = find_model(name)
    if found is not None:
        return found
    if offline:
        raise Offline(
            f"the background removal model {name} is not on this machine and downloads are off: put {name}.onnx "
            f"(from {model.url}) into {model_path(name).parent}, or allow online access once (Blender: "
            "Preferences > System), or turn Remove Background off (command line: --no-remove-bg) and give an image "
            "with a transparent background"
        )
    from .download import download  # urllib's import is slow: only when there is something to fetch

    checked = not os.environ.get("MODEL_CHECKSUM_DISABLED")  # rembg's switch, honoured the same way
    return download(model.url, model_path(name), md5=model.md5 if checked else None, progress=progress)


def resolve_model_file(choice: str, offline: bool = False, progress: ByteProgress | None = None) -> Path:
    """A model name (downloaded when missing) or the path of an .onnx file (or its folder)."""
    if choice in MODELS:
        return ensure_model(choice, offline, progress)
    path = Path(choice).expanduser()
    if path.is_dir():
        path = path / f"{DEFAULT_MODEL}.onnx"
    if not path.is_file():
        raise BackgroundModelError(
            f"background removal model not found at {path}: choose one of {', '.join(MODELS)} (downloaded on "
            "first use) or an existing .onnx file; or turn background removal off and give an image with a "
            "transparent background"
        )
    return path


class BackgroundRemover:
    """One onnxruntime session, created once, answering alpha masks for RGB images the way
    rembg's session for the model does (its recipe is told by the model's input size)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception types for bad files)
            raise BackgroundModelError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0]})") from None
        self.path = path
        model_input = self.session.get_inputs()[0]
        self._input_name = model_input.name
        size = model_input.shape[-1]
        if size not in RECIPES:
            raise BackgroundModelError(
                f"{path}: an input of {model_input.shape} fits neither rembg's u2net nor its isnet models"
            )
        self.recipe = RECIPES[size]
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha (H, W) in [0, 1] for a float RGB image (H, W, 3) in [0, 1]."""
        image = Image.fromarray(np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8), mode="RGB")
        size = (self.recipe.input_size, self.recipe.input_size)
        small = np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float64)
        small = small / max(float(small.max()), 1e-6)
        batch = ((small - self.recipe.mean) / self.recipe.std).transpose(2, 0, 1)[None].astype(np.float32)
        with self._lock:
            prediction = self.session.run(None, {self._input_name: batch})[0][0, 0]
        low, high = float(prediction.min()), float(prediction.max())
        prediction = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
        mask = Image.fromarray((np.clip(prediction, 0.0, 1.0) * 255).astype(np.uint8), mode="L")
        mask = mask.resize(image.size, Image.Resampling.LANCZOS)
        return np.asarray(mask, dtype=np.float32) / 255.0


_removers: dict[Path, BackgroundRemover] = {}
_removers_lock = threading.Lock()


def get_background_remover(
    choice: str = DEFAULT_MODEL, offline: bool = False, progress: ByteProgress | None = None
) -> BackgroundRemover:
    """The shared remover for a model, so its session is made once per process."""
    key = resolve_model_file(choice, offline, progress).resolve()
    with _removers_lock:
        if key not in _removers:
            _removers[key] = BackgroundRemover(key)
        return _removers[key]
