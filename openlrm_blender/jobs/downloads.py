"""A background removal model fetched in a thread of Blender's process: downloading needs
no PyTorch and holds no lock for long, so it does not need the worker."""

from __future__ import annotations

from pathlib import Path

from ..engine.input import background
from .task import Task


class Download(Task):
    """rembg's model ``name`` into rembg's folder; ``result`` is its path."""

    thread_name = "openlrm-download"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def _progress(self, done: int, total: int) -> None:
        self._token.check()
        self.fraction = done / total if total else 0.0

    def work(self) -> Path:
        return background.ensure_model(self.name, progress=self._progress)

    def explain(self, error) -> str:
        if error is None:
            return f"the download of {self.name} was cancelled (it goes on from there next time)"
        return str(error)
