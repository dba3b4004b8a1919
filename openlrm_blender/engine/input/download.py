"""One file over HTTP(S) into place: resumed after an interruption, retried, checked
against its checksum, and renamed into place only when complete and verified, so a
broken or cancelled download never becomes the file.

The partial file (``.NAME.part`` beside the destination) is kept between tries and
between runs, so a cancelled download goes on where it stopped next time.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import DownloadError

CHUNK = 1 << 20
TIMEOUT_SECONDS = 30.0
RETRIES = 3
RETRY_PAUSE_SECONDS = 1.0  # doubled after each failed try

# bytes done, bytes in all (0 when unknown); may raise to stop the download (Cancel)
ByteProgress = Callable[[int, int], None]


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, progress: ByteProgress | None) -> None:
    """Append the rest of the file to ``part`` (asking for a range when it has a start)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the part already holds the whole file
            return
        raise
    with response:
        if response.status != 206:  # the server sent it all again
            have = 0
        length = int(response.headers.get("Content-Length") or 0)
        total = have + length if length else 0
        with open(part, "ab" if have else "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
                have += len(block)
                if progress is not None:
                    progress(have, total)
    if total and have < total:
        raise ConnectionError(f"the connection closed after {have} of {total} bytes")


def download(url: str, destination: Path, md5: str | None = None, progress: ByteProgress | None = None) -> Path:
    """``destination``, fetched from ``url`` unless it is there already; ``md5`` (hex) checks it."""
    if destination.is_file():
        return destination
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot make the folder {destination.parent} for {destination.name}: {error}") from None
    part = destination.with_name(f".{destination.name}.part")
    for attempt in range(RETRIES + 1):
        try:
            _fetch(url, part, progress)
            break
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, a cut transfer
            if isinstance(error, urllib.error.HTTPError) and error.code < 500 and error.code != 429:
                raise DownloadError(f"could not download {url}: HTTP {error.code} {error.reason}") from None
            if attempt == RETRIES:
                reason = getattr(error, "reason", None) or error
                raise DownloadError(f"could not download {url} after {RETRIES + 1} tries: {reason}") from None
            time.sleep(RETRY_PAUSE_SECONDS * 2**attempt)
    if md5 is not None and (found := _file_md5(part)) != md5:
        part.unlink()
        raise DownloadError(
            f"the download of {url} is corrupt (MD5 {found}, expected {md5}); nothing was kept, try again"
        )
    os.replace(part, destination)
    return destination
