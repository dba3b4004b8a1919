"""Where a run computes: the device, the precision, and the loaded model kept between runs."""

from __future__ import annotations

import threading
import timeit
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import host_memory
from .errors import EngineError
from .models.estimate import Speed
from .models.registry import Family, family_of_folder
from .options import PRECISIONS

DTYPES = {name: getattr(torch, name) for name in PRECISIONS if name != "auto"}
RATE_SIZE, RATE_REPEATS = 2048, 3  # the model process's product: 0.1 s in float32 here
ATTENTION_SHAPE = (16, 2048, 64)  # heads, tokens, head width: the flows' own (0.1 s here)


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


def resolve_precision(dtype: str, device: torch.device, family: Family) -> str:
    """ "auto": float32 (the published numbers), but on a GPU the precision the family's
    published code runs there (TripoSG's float16); anything else as it is."""
    if dtype != "auto":
        return dtype
    return family.gpu_precision if device.type in ("cuda", "mps") else "float32"


def cpu_has_bfloat16() -> bool:
    """Whether PyTorch's CPU kernels do bfloat16 arithmetic here (AVX-512, AMX, Arm's BF16).
    Elsewhere it is emulated: 6x slower than float32 on a Zen 3 EPYC with AVX2 only."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return supported is None or bool(supported())


def check_precision(device: torch.device, dtype: str) -> None:
    """Refuse a precision the device runs badly, in words, before the weights are loaded."""
    if device.type == "cpu" and dtype == "float16":
        raise EngineError(
            "float16 is very slow on the CPU (it has no half-precision arithmetic): choose float32, or bfloat16 on a "
            "CPU with bfloat16 instructions"
        )
    if device.type == "cpu" and dtype == "bfloat16" and not cpu_has_bfloat16():
        raise EngineError(
            "this CPU has no bfloat16 arithmetic, so bfloat16 would run emulated, several times slower than float32: "
            "choose float32"
        )
    if device.type == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise EngineError(f"{name} has no bfloat16 arithmetic (it came with Ampere GPUs): choose float16 or float32")


def keep_float32_exact(device: torch.device, dtype: str) -> None:
    """float32 on CUDA computed in float32: PyTorch lets cuDNN's convolutions use TF32 by
    default (10-bit mantissas), which on an H200 moved 0.6% of the tiny vector's triangles
    (scripts/device_check.sh); TF32 matrix products are off by default and stay off."""
    if device.type == "cuda" and dtype == "float32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def synchronise(device: torch.device) -> None:
    """Wait for the work queued on the device: GPUs run asynchronously, so a stage's time
    and a layer's progress are real only after this."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_cached_memory() -> None:
    """Hand the memory a run's allocators keep for reuse back: between runs only the loaded
    weights stay, so Cycles and EEVEE get the rest of the GPU and Blender the rest of the RAM."""
    host_memory.give_back_freed_blocks()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def torch_summary() -> str:
    """Which PyTorch runs the model and what it can use, for people to read."""
    devices = ["CPU"]
    if torch.cuda.is_available():
        devices.append(f"CUDA {torch.version.cuda}")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("MPS")
    return f"PyTorch {torch.__version__} ({', '.join(devices)}) from {Path(torch.__file__).parent}"


_models: dict[tuple[Path, str, str], nn.Module] = {}
_models_lock = threading.Lock()


def get_model(folder: Path, device: torch.device, dtype: str) -> nn.Module:
    """The loaded model for these files, device and precision, loading it once."""
    key = (folder.resolve(), str(device), dtype)
    with _models_lock:
        if key not in _models:
            _models.clear()  # one model at a time: they are large
            _models[key] = load_model(folder, device, DTYPES[dtype])
        return _models[key]


def load_model(folder: Path, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """The model in ``folder``, of whichever family its files say."""
    host_memory.keep_freed_blocks()  # a process that loads a model computes with it
    return family_of_folder(folder).recipe().load_model(folder, device, dtype)


def unload_models() -> None:
    """Free the cached models' memory."""
    with _models_lock:
        _models.clear()
    free_cached_memory()


def measure_speed(precision: str = "float32", device: str = "cpu", repeats: int = RATE_REPEATS) -> Speed:
    """The device's rates now in ``precision``, for the estimate of a run's time
    (``models.estimate``)."""
    return Speed(matmul_gflops(precision, device, repeats=repeats), attention_gflops(precision, device, repeats))


def matmul_gflops(
    precision: str = "float32", device: str = "cpu", size: int = RATE_SIZE, repeats: int = RATE_REPEATS
) -> float:
    """The device's matrix-product rate now in ``precision``, GFLOP/s: the best of a few
    ``size``^3 products after one to warm up."""
    a, b = (torch.randn(size, size).to(device, DTYPES[precision]) for _ in range(2))
    return 2 * size**3 / _best_seconds(lambda: a @ b, torch.device(device), repeats) / 1e9


def attention_gflops(precision: str = "float32", device: str = "cpu", repeats: int = RATE_REPEATS) -> float:
    """The device's fused attention rate now in ``precision``, GFLOP/s, on the flows' shape
    (``ATTENTION_SHAPE``)."""
    heads, tokens, width = ATTENTION_SHAPE
    q, k, v = (torch.randn(1, heads, tokens, width).to(device, DTYPES[precision]) for _ in range(3))
    seconds = _best_seconds(lambda: F.scaled_dot_product_attention(q, k, v), torch.device(device), repeats)
    return 4 * heads * tokens**2 * width / seconds / 1e9


def _best_seconds(work: Callable[[], object], device: torch.device, repeats: int) -> float:
    """The best of ``repeats`` timings after one to warm up, the device's work waited for."""

    def once() -> None:
        work()
        synchronise(device)

    once()
    return min(timeit.repeat(once, number=1, repeat=repeats))
