"""One call from an image to mesh arrays, with progress, cancellation and a model cache."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from .background import get_background_remover
from .camera import source_camera
from .errors import EngineError
from .image import ImageSource, prepare_image
from .mesh import extract_mesh
from .model import OpenLRM
from .progress import CancelToken, ProgressCallback, Reporter, Stopwatch
from .options import PRECISIONS, Options
from .result import Result
from .weights import load_model, resolve_model_dir

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


_models: dict[tuple[Path, str, str], OpenLRM] = {}
_models_lock = threading.Lock()


def get_model(folder: Path, device: torch.device, dtype: str) -> OpenLRM:
    """The loaded model for these files, device and precision, loading it once."""
    key = (folder.resolve(), str(device), dtype)
    with _models_lock:
        if key not in _models:
            _models.clear()  # one model at a time: they are large
            _models[key] = load_model(folder, device, DTYPES[dtype])
        return _models[key]


def unload_models() -> None:
    """Free the cached models' memory."""
    with _models_lock:
        _models.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def published_input_size(model: OpenLRM) -> int:
    size = model.config.published_input_size
    if size is None:
        raise EngineError(
            f"this model (transformer_dim {model.config.transformer_dim}) has no published input size: "
            "give the input size"
        )
    return size


@torch.inference_mode()
def generate(
    image: ImageSource,
    options: Options | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Result:
    """Image -> coloured mesh. Raises ``EngineError`` subclasses with one-line messages."""
    options = options or Options()
    options.validate()
    report = Reporter(progress, cancel)
    timings: dict[str, float] = {}
    stopwatch = Stopwatch(timings)

    device = pick_device(options.device)
    where = f"the folder {options.weights_dir}" if options.weights_dir else f"{options.model} on the Hugging Face Hub"
    report("model", 0.0, f"finding {where}")
    folder = resolve_model_dir(
        options.model,
        options.weights_dir,
        revision=options.revision,
        token=options.token,
        cache_dir=options.cache_dir,
        offline=options.offline,
        progress=lambda done, total, name: report("model", done / total if total else 0.0, f"downloading {name}"),
    )
    report("model", 1.0, f"loading the weights from {folder.name}")
    model = get_model(folder, device, options.dtype)
    stopwatch.lap("load")

    def remove_background(rgb):  # the remover loads only for images without a mask
        return get_background_remover(options.background_model)(rgb)

    size = options.input_size or published_input_size(model)
    report("preprocess", 0.0, "preparing the image")
    pixels = prepare_image(
        image,
        size,
        remove_background if options.remove_background else None,
        options.recenter,
        options.foreground_ratio,
        options.max_megapixels,
    )
    report("preprocess", 1.0, "image ready")
    stopwatch.lap("preprocess")

    dtype = DTYPES[options.dtype]
    report("encode", 0.0, "encoding the image")
    planes = model(
        pixels.to(device, dtype),
        source_camera(options.camera_distance).to(device, dtype),
        after_layer=lambda done, total: report("encode", done / total, f"transformer layer {done}/{total}"),
    )
    stopwatch.lap("encode")

    mesh = extract_mesh(model.synthesizer, planes, options.resolution, options.threshold, options.dense, report, timings)
    stopwatch.lap("mesh")
    timings["total"] = stopwatch.total()
    return Result(mesh=mesh, model_dir=folder, device=str(device), timings=timings)
