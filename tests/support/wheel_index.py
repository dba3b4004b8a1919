"""A PEP 503 package index made from wheel files, served on 127.0.0.1: what the PyTorch
installer's tests install from (the machine's own torch 2.13.0 CPU wheel and its
dependencies, fetched once with pip download)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO

TORCH_WHEELS = REPO / "build" / f"torch-wheels-cp{sys.version_info[0]}{sys.version_info[1]}"


def torch_wheels() -> Path:
    """torch 2.13.0 for this Python, and what it needs, as wheels (pip download, once)."""
    if not any(TORCH_WHEELS.glob("torch-*.whl")):
        TORCH_WHEELS.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(TORCH_WHEELS)]
        subprocess.run([*command, "torch==2.13.0"], check=True, timeout=1800)
    return TORCH_WHEELS


def make_index(wheels: Path, folder: Path, corrupt: str | None = None) -> Path:
    """``folder/simple/<project>/index.html`` linking ``folder/files/<wheel>#sha256=...``;
    ``corrupt`` names a project whose wheel is served damaged (its hash is the good one's)."""
    files = folder / "files"
    files.mkdir(parents=True)
    projects: dict[str, list[str]] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        project = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if project == corrupt:
            data = bytearray(wheel.read_bytes())
            data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)
            (files / wheel.name).write_bytes(bytes(data))
        else:
            (files / wheel.name).symlink_to(wheel.resolve())
        projects.setdefault(project, []).append(f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>')
    for project, links in projects.items():
        (folder / "simple" / project).mkdir(parents=True)
        (folder / "simple" / project / "index.html").write_text(
            "<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        )
    return folder


class FolderServer:
    """Static files from a folder; ``throttle`` (bytes per second) slows every transfer."""

    def __init__(self, folder: Path, throttle: int | None = None) -> None:
        class Handler(SimpleHTTPRequestHandler):
            def copyfile(self, source, destination) -> None:
                if throttle is None:
                    shutil.copyfileobj(source, destination)
                    return
                while block := source.read(throttle // 10):
                    destination.write(block)
                    time.sleep(0.1)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # pip killed or out of space mid-transfer
                    super().handle_error(request, client_address)

        self.http = Server(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/simple"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="session")
def torch_index(tmp_path_factory):
    """The index of the good wheels, served at full speed."""
    server = FolderServer(make_index(torch_wheels(), tmp_path_factory.mktemp("index")))
    yield server.url
    server.close()
