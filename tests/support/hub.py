"""A stand-in for the Hugging Face Hub on 127.0.0.1 (huggingface_hub's file requests: HEAD
for metadata, GET for bytes, streamed so a real-size checkpoint fits), and the Hub cache's
folder layout, pre-filled."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

CHUNK = 1 << 22


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Serves ``folder``'s files as any repository's (or ``repositories``' folders as those
    repositories'), at ``commit``."""

    folder: Path
    repositories: ClassVar[dict[str, Path]] = {}
    commit = "b" * 40

    def _file(self) -> Path | None:
        parts = self.path.split("?")[0].strip("/").split("/")  # owner, name, "resolve", revision, path...
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        folder = self.repositories.get(f"{parts[0]}/{parts[1]}", self.folder)
        path = folder / "/".join(parts[4:])
        return path if path.is_file() else None

    def _headers(self, path: Path) -> None:
        stat = path.stat()
        self.send_response(200)
        self.send_header("Content-Length", str(stat.st_size))
        self.send_header("ETag", f'"{path.name}-{stat.st_size}-{stat.st_mtime_ns}"')
        self.send_header("X-Repo-Commit", self.commit)
        self.end_headers()

    def do_HEAD(self) -> None:
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        self._headers(path)

    def do_GET(self) -> None:
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        self._headers(path)
        with open(path, "rb") as stream:
            while block := stream.read(CHUNK):
                self.wfile.write(block)

    def log_message(self, *args) -> None:
        pass


class HubServer:
    """``with HubServer(folder) as endpoint:``, an ``HF_ENDPOINT`` on 127.0.0.1 (``repositories``:
    repository id -> folder, for a model whose files come from several)."""

    def __init__(self, folder: Path, repositories: dict[str, Path] | None = None) -> None:
        handler = type("Handler", (FakeHub,), {"folder": folder, "repositories": repositories or {}})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_hub_cache(cache: Path, model_dir: Path, repo_id: str, files: Iterable[str], commit: str = "a" * 40) -> Path:
    """The huggingface_hub cache layout: refs/main -> snapshots/<commit>/files (hard links
    where the file system allows, so a real-size checkpoint is not copied)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in files:
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(model_dir / name, snapshot / name)
        except OSError:
            shutil.copy(model_dir / name, snapshot / name)
    return snapshot
