"""Reading a model's tensors and checking them against the model before loading: shared
by every model family. Safetensors are read as they are; a pickle checkpoint only through
PyTorch's tensors-only unpickler, never a full unpickle (unpickling can run code)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import WeightsError


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: not a valid safetensors file, truncated or corrupt ({exc})") from None


def read_tensors_pickle(path: Path) -> dict[str, torch.Tensor]:
    """A PyTorch checkpoint (``.ckpt``, ``.pth``) that holds a flat dict of tensors, read with
    ``weights_only=True`` and memory-mapped; one that needs more than tensors is refused."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found") from None
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0][:200]
        raise WeightsError(
            f"{path}: the checkpoint holds more than tensors, so it is not loaded (unpickling it could run code): "
            f"{reason}"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt ({exc})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path}: the checkpoint is not a plain dictionary of tensors")
    return state


def _shape(shape: torch.Size | tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) or "scalar"


def _examples(keys: list[str], count: int = 3) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f" and {len(keys) - count} more" if len(keys) > count else "")


def check_state_dict(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path, config: str
) -> None:
    """Missing, unexpected and misshapen tensors, reported in one line before loading
    (``config``: the file the expected layout comes from)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise WeightsError(f"{path}: {len(missing)} tensors missing for this {config}: {_examples(missing)}")
    if unexpected:
        raise WeightsError(f"{path}: {len(unexpected)} unexpected tensors for this {config}: {_examples(unexpected)}")
    wrong = [
        f"{key} is {_shape(state[key].shape)}, expected {_shape(expected[key].shape)}"
        for key in expected
        if tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    if wrong:
        raise WeightsError(f"{path}: {len(wrong)} tensors have the wrong shape for this {config}: {_examples(wrong)}")


def renamed(key: str, names: dict[str, str]) -> str:
    """``key`` with the first of ``names``' prefixes it starts with replaced."""
    for prefix, replacement in names.items():
        if key.startswith(prefix):
            return replacement + key[len(prefix) :]
    return key
