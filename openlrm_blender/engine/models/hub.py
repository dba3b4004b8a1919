"""Model files from the Hugging Face Hub, shared by every model family: downloads go through
``huggingface_hub`` into its standard cache, so ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as they do everywhere else."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import Offline, WeightsError

# bytes done, bytes in all (0 when unknown), file name
ByteProgress = Callable[[int, int, str], None]


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


def download(
    repo_id: str,
    files: Sequence[str | tuple[str, ...]],
    revision: str | None = None,
    token: str | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: ByteProgress | None = None,
) -> Path:
    """Folder in the Hub cache holding ``files``, downloading what is missing; a tuple
    stands for alternatives, the first the repository has (``model.safetensors`` before
    ``model.ckpt``, say)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub import errors as hub_errors

    offline = offline_default() if offline is None else offline
    cache = Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    path = None
    for wanted in files:
        choices = (wanted,) if isinstance(wanted, str) else wanted
        for index, filename in enumerate(choices):
            last = index == len(choices) - 1
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
                break
            except hub_errors.GatedRepoError:
                raise WeightsError(f"{where}: the repository is gated: accept its terms on the Hub and give a token") from None
            except hub_errors.RepositoryNotFoundError:
                raise WeightsError(f"{where}: repository not found on the Hub (or private: give a token)") from None
            except hub_errors.RevisionNotFoundError:
                raise WeightsError(f"{where}: revision {revision!r} not found") from None
            except hub_errors.LocalEntryNotFoundError:
                if not last:
                    continue
                reason = (
                    "downloads are off (Blender's Allow Online Access, --offline or HF_HUB_OFFLINE)"
                    if offline
                    else "the Hub cannot be reached"
                )
                raise (Offline if offline else WeightsError)(
                    f"{where}/{choices[0]}: not in the Hugging Face cache ({cache}) and {reason}; "
                    "download it once while online, or use a local model folder"
                ) from None
            except hub_errors.EntryNotFoundError:
                if not last:
                    continue
                raise WeightsError(f"{where}: the repository has no {' or '.join(choices)}") from None
            except (hub_errors.HfHubHTTPError, OSError) as exc:
                raise WeightsError(f"{where}/{filename}: download failed ({str(exc).splitlines()[0]})") from None
    return Path(path).parent
