"""Background removal with rembg's U^2-Net model, run directly with onnxruntime.

The rembg package itself is not a dependency: its current releases need NumPy 2
(Blender 4.2 ships 1.26) and pull in numba, SciPy and scikit-image for matting
features this add-on does not use. Its model file and its pre- and post-processing
(320 x 320 Lanczos resize, scale by the maximum, ImageNet mean and std, first output
min-max normalised, resized back) are what give rembg's masks, so they are kept:
a ``u2net.onnx`` downloaded by rembg (``rembg d u2net``) is found where rembg keeps it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import BackgroundModelError

MODEL_FILE = "u2net.onnx"
INPUT_SIZE = (320, 320)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def default_model_path() -> Path:
    """Where rembg keeps the model: ``$U2NET_HOME`` or ``~/.u2net``."""
    home = os.environ.get("U2NET_HOME") or Path("~/.u2net").expanduser()
    return Path(home) / MODEL_FILE


def _missing_model_message(path: Path) -> str:
    return (
        f"background removal model not found at {path}: get rembg's u2net.onnx with "
        f"'pip install rembg && rembg d u2net' (or download it from rembg's GitHub releases) "
        f"and put it there or point the background model setting at it; "
        f"or turn background removal off and give an image with a transparent background"
    )


class BackgroundRemover:
    """One onnxruntime session, created once, answering alpha masks for RGB images."""

    def __init__(self, model_path: Path | None = None) -> None:
        path = Path(model_path) if model_path else default_model_path()
        if path.is_dir():
            path = path / MODEL_FILE
        if not path.is_file():
            raise BackgroundModelError(_missing_model_message(path))
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise BackgroundModelError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0]})") from None
        self.path = path
        self._input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Alpha (H, W) in [0, 1] for a float RGB image (H, W, 3) in [0, 1]."""
        image = Image.fromarray(np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8), mode="RGB")
        small = np.asarray(image.resize(INPUT_SIZE, Image.Resampling.LANCZOS), dtype=np.float32)
        small = small / max(float(small.max()), 1e-6)
        batch = ((small - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        with self._lock:
            prediction = self.session.run(None, {self._input_name: batch})[0][0, 0]
        low, high = float(prediction.min()), float(prediction.max())
        prediction = (prediction - low) / (high - low) if high > low else np.zeros_like(prediction)
        mask = Image.fromarray((prediction * 255).astype(np.uint8), mode="L")
        mask = mask.resize(image.size, Image.Resampling.LANCZOS)
        return np.asarray(mask, dtype=np.float32) / 255.0


_removers: dict[Path, BackgroundRemover] = {}
_removers_lock = threading.Lock()


def get_background_remover(model_path: Path | None = None) -> BackgroundRemover:
    """The shared remover for a model file, so the session is made once per process."""
    key = Path(model_path).resolve() if model_path else default_model_path().resolve()
    with _removers_lock:
        if key not in _removers:
            _removers[key] = BackgroundRemover(key)
        return _removers[key]
