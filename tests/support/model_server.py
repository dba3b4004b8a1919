"""A file server on 127.0.0.1 for download tests: serves given bytes by path, answers
ranges (for resumed downloads), and can break a transfer partway to test recovery."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest


class ModelServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.break_after: int | None = None  # bytes of the next transfer before it breaks off
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.break_after is not None:
                    body, server.break_after = body[: server.break_after], None
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; gives its MD5."""
        self.files[path] = data
        return hashlib.md5(data).hexdigest()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def model_server():
    server = ModelServer()
    yield server
    server.close()


def random_bytes(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
