"""Model files from the Hugging Face Hub, shared by every model family: downloads go through
``huggingface_hub`` into its standard cache, so ``HF_HOME``, ``HF_HUB_CACHE``,
``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as they do everywhere else."""

from __future__ import annotations

import os
import shutil
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


def _hub_failure(exc: Exception, where: str, filename: str) -> WeightsError | None:
    """The sentence for what the Hub answered (None for what the caller tells apart itself)."""
    from huggingface_hub import errors as hub_errors

    if isinstance(exc, hub_errors.GatedRepoError):
        return WeightsError(f"{where}: the repository is gated: accept its terms on the Hub and give a token")
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        return WeightsError(f"{where}: repository not found on the Hub (or private: give a token)")
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return WeightsError(f"{where}: revision {where.partition('@')[2]!r} not found")
    if isinstance(exc, hub_errors.EntryNotFoundError):  # absent, or not cached while offline or unreachable
        return None
    if isinstance(exc, (hub_errors.HfHubHTTPError, OSError)):
        return WeightsError(f"{where}/{filename}: download failed ({str(exc).splitlines()[0]})")
    return None


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


def check_room(folder: Path, needed: int, where: str) -> None:
    """Refuse, before any byte is fetched, a download the disk has no room for."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise WeightsError(
            f"{where}: the download needs {_gigabytes(needed)} and {folder} has {_gigabytes(free)} free; make room, or "
            "choose another Hugging Face cache folder (HF_HOME, or the preferences' cache folder)"
        )


def download(
    repo_id: str,
    files: Sequence[str | tuple[str, ...]],
    revision: str | None = None,
    token: str | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: ByteProgress | None = None,
) -> Path:
    """The repository's folder in the Hub cache holding ``files`` (paths in the repository,
    sub-folders too), downloading what is missing; a tuple stands for alternatives, the first
    the repository has (``model.safetensors`` before ``model.ckpt``, say). What must be
    fetched is sized first, refused if the disk lacks room, and its progress told over all
    the files together."""
    return download_repositories([(repo_id, files, revision)], token, cache_dir, offline, progress)[0]


Repository = tuple[str, Sequence[str | tuple[str, ...]], str | None]  # repo id, files, revision


def download_repositories(
    repositories: Sequence[Repository],
    token: str | None = None,
    cache_dir: Path | None = None,
    offline: bool | None = None,
    progress: ByteProgress | None = None,
) -> list[Path]:
    """``download`` for a model whose files live in several repositories (TRELLIS and its
    image encoder): all of them sized together before any byte is fetched, one progress over
    them all; each repository's folder in the cache."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
    from huggingface_hub import errors as hub_errors

    offline = offline_default() if offline is None else offline
    cache = Path(cache_dir) if cache_dir else Path(constants.HF_HUB_CACHE)

    def choose(repo_id: str, revision: str | None, choices: tuple[str, ...]) -> tuple[str, int]:
        """The first of ``choices`` the cache or the repository has, and the bytes to fetch."""
        where = repo_id + (f"@{revision}" if revision else "")
        for filename in choices:
            if isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision), str):
                return filename, 0
            if offline:
                continue
            try:
                metadata = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), token=token or None)
                return filename, metadata.size or 0
            except hub_errors.EntryNotFoundError:
                continue
            except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError) as exc:
                raise _hub_failure(exc, where, filename) from None
            except hub_errors.HfHubHTTPError as exc:
                if getattr(exc.response, "status_code", None) == 404:  # a mirror's plain "not found"
                    continue
                return filename, 0  # failing: the download itself says how
            except Exception:  # noqa: BLE001 (unreachable: the download itself says so)
                return filename, 0
        if offline:
            raise Offline(
                f"{where}/{choices[0]}: not in the Hugging Face cache ({cache}) and downloads are off (Blender's "
                "Allow Online Access, --offline or HF_HUB_OFFLINE); download it once while online, or use a local "
                "model folder"
            )
        raise WeightsError(f"{where}: the repository has no {' or '.join(choices)}")

    chosen = [
        (repo_id, revision, *choose(repo_id, revision, (wanted,) if isinstance(wanted, str) else wanted))
        for repo_id, files, revision in repositories
        for wanted in files
    ]
    total = sum(size for *_, size in chosen)
    if total:
        check_room(cache, total, ", ".join(repo_id for repo_id, *_ in repositories))
    done = 0
    folders = {}
    for repo_id, revision, filename, size in chosen:
        where = repo_id + (f"@{revision}" if revision else "")

        def tell(file_done: int, file_total: int, name: str, before: int = done) -> None:
            progress(before + file_done, total, f"{name}: {_gigabytes(before + file_done)} of {_gigabytes(total)}")

        try:
            path = hf_hub_download(
                repo_id, filename, revision=revision, token=token or None, cache_dir=cache_dir,
                local_files_only=offline, tqdm_class=_progress_class(tell, filename) if progress and size else None,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 (the Hub's errors, told apart by _hub_failure)
            failure = _hub_failure(exc, where, filename)
            if failure is not None:
                raise failure from None
            reason = "downloads are off (Blender's Allow Online Access, --offline or HF_HUB_OFFLINE)" if offline else (
                "the Hub cannot be reached"
            )  # fmt: skip
            raise (Offline if offline else WeightsError)(
                f"{where}/{filename}: not in the Hugging Face cache ({cache}) and {reason}; "
                "download it once while online, or use a local model folder"
            ) from None
        done += size
        folders[repo_id] = Path(path).parents[len(Path(filename).parts) - 1]
    return [folders[repo_id] for repo_id, *_ in repositories]
