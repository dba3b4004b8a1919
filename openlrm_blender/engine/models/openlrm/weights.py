"""Finding a model's files (Hugging Face Hub or a local folder) and loading them strictly.

A model is a folder with ``config.json`` and ``model.safetensors``. Hub downloads go
through ``huggingface_hub`` into its standard cache, so ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as they do everywhere else. Only safetensors
are read: a pickle checkpoint is refused, never unpickled.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .config import PUBLISHED_MODELS, ModelConfig
from ...errors import Offline, WeightsError
from .model import OpenLRM

HUB_OWNER = "zxhezexin"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_FILES = ("pytorch_model.bin", "model.bin", "model.pth", "model.pt", "model.ckpt")
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# Keys the published files may carry that the model does not use.
UNUSED_KEYS = ("encoder.model.mask_token",)
# Our names for what the published checkpoint calls otherwise: its decoder is "synthesizer"
# and that decoder's MLP "decoder"; ours are "decoder" and "mlp".
PUBLISHED_NAMES = {"decoder.mlp.": "synthesizer.decoder."}

# bytes done, bytes in all (0 when unknown), file name
ByteProgress = Callable[[int, int, str], None]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def repo_id_for(name: str) -> str:
    """Hub repo id for a published model name or a full ``owner/name`` id."""
    if name in PUBLISHED_MODELS:
        return f"{HUB_OWNER}/{name}"
    if _REPO_ID.fullmatch(name):
        return name
    raise WeightsError(
        f"unknown model name {name!r}: use one of {', '.join(PUBLISHED_MODELS)}, a Hub repo id (owner/name) "
        "or a local folder with config.json and model.safetensors"
    )


def check_model_dir(folder: Path) -> Path:
    """The folder, if it has both model files; else a message naming what is missing."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: model folder not found")
    if not (folder / WEIGHTS_FILE).is_file():
        pickles = [name for name in PICKLE_FILES if (folder / name).is_file()]
        if pickles:
            raise WeightsError(
                f"{folder / WEIGHTS_FILE}: file not found; {pickles[0]} is a pickle checkpoint, which is never "
                "loaded (unpickling can run code): convert it to safetensors first"
            )
        raise WeightsError(f"{folder / WEIGHTS_FILE}: file not found")
    if not (folder / CONFIG_FILE).is_file():
        raise WeightsError(f"{folder / CONFIG_FILE}: file not found")
    return folder


def offline_default() -> bool:
    """Downloads off for the Hub (``HF_HUB_OFFLINE``): every download of ours honours it."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _progress_class(callback: ByteProgress, filename: str) -> type:
    from huggingface_hub.utils import tqdm

    class _ByteProgress(tqdm):
        """Forwards huggingface_hub's byte counts to ``callback``; prints nothing itself."""

        def __init__(self, *args, **kwargs) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.bytes_done = kwargs.get("initial", 0) or 0

        def update(self, n: float | None = 1) -> bool | None:
            self.bytes_done += int(n or 0)
            callback(self.bytes_done, int(self.total or 0), filename)
            return None

    return _ByteProgress


def download_model(
    name: str,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: ByteProgress | None = None,
) -> Path:
    """Folder in the Hub cache holding the model's two files, downloading what is missing."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub import errors as hub_errors

    repo_id = repo_id_for(name)
    offline = offline_default() if offline is None else offline
    cache = Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    path = None
    for filename in MODEL_FILES:
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                token=token or None,
                cache_dir=cache_dir,
                local_files_only=offline,
                tqdm_class=_progress_class(progress, filename) if progress else None,
            )
        except hub_errors.GatedRepoError:
            raise WeightsError(f"{where}: the repository is gated: accept its terms on the Hub and give a token") from None
        except hub_errors.RepositoryNotFoundError:
            raise WeightsError(f"{where}: repository not found on the Hub (or private: give a token)") from None
        except hub_errors.RevisionNotFoundError:
            raise WeightsError(f"{where}: revision {revision!r} not found") from None
        except hub_errors.LocalEntryNotFoundError:
            reason = (
                "downloads are off (Blender's Allow Online Access, --offline or HF_HUB_OFFLINE)"
                if offline
                else "the Hub cannot be reached"
            )
            raise (Offline if offline else WeightsError)(
                f"{where}/{filename}: not in the Hugging Face cache ({cache}) and {reason}; "
                "download it once while online, or use a local model folder"
            ) from None
        except hub_errors.EntryNotFoundError:
            raise WeightsError(f"{where}: the repository has no {filename}") from None
        except (hub_errors.HfHubHTTPError, OSError) as exc:
            raise WeightsError(f"{where}/{filename}: download failed ({str(exc).splitlines()[0]})") from None
    return Path(path).parent


def resolve_model_dir(
    model: str,
    weights_dir: Path | str | None = None,
    **hub_options,
) -> Path:
    """A local folder when one is given (or ``model`` is one), else the Hub cache's copy."""
    if weights_dir:
        return check_model_dir(Path(weights_dir).expanduser())
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        return check_model_dir(as_path)
    if model.startswith((".", "~", "/", "\\")) or as_path.is_absolute():
        raise WeightsError(f"{model}: model folder not found")
    return download_model(model, **hub_options)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: not a valid safetensors file, truncated or corrupt ({exc})") from None
    for key in UNUSED_KEYS:
        state.pop(key, None)
    return state


def _shape(shape: torch.Size | tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape) or "scalar"


def _examples(keys: list[str], count: int = 3) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f" and {len(keys) - count} more" if len(keys) > count else "")


def _renamed(key: str, names: dict[str, str]) -> str:
    for prefix, replacement in names.items():
        if key.startswith(prefix):
            return replacement + key[len(prefix) :]
    return key


def published_state(model: OpenLRM) -> dict[str, torch.Tensor]:
    """The model's tensors under the published checkpoint's names."""
    return {_renamed(key, PUBLISHED_NAMES): value for key, value in model.state_dict().items()}


def check_state_dict(model: OpenLRM, state: dict[str, torch.Tensor], path: Path) -> None:
    """Missing, unexpected and misshapen tensors of a checkpoint in the published names,
    reported in one line before loading."""
    expected = published_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise WeightsError(f"{path}: {len(missing)} tensors missing for this config.json: {_examples(missing)}")
    if unexpected:
        raise WeightsError(f"{path}: {len(unexpected)} unexpected tensors for this config.json: {_examples(unexpected)}")
    wrong = [
        f"{key} is {_shape(state[key].shape)}, expected {_shape(expected[key].shape)}"
        for key in expected
        if tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    if wrong:
        raise WeightsError(f"{path}: {len(wrong)} tensors have the wrong shape for this config.json: {_examples(wrong)}")


def load_model(folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> OpenLRM:
    """Build the model from ``config.json`` and load ``model.safetensors`` strictly.

    The model is built on the meta device and the file's tensors are assigned to it,
    so the weights are never held twice.
    """
    folder = check_model_dir(Path(folder))
    config = ModelConfig.load(folder / CONFIG_FILE)
    with torch.device("meta"):
        model = OpenLRM(config)
    state = read_state_dict(folder / WEIGHTS_FILE)
    check_state_dict(model, state, folder / WEIGHTS_FILE)
    ours = {published: key for key, published in PUBLISHED_NAMES.items()}
    model.load_state_dict({_renamed(key, ours): value for key, value in state.items()}, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
