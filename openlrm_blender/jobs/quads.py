"""Quads from a finished run's triangles, made by Blender's own remeshers in a Blender
process of its own (``addon.quad_remesh`` is what it runs): a voxel remesh and QuadriFlow
take seconds and hold the interpreter that calls them, and QuadriFlow can fail, so they run
where Blender's interface never waits for them, where Cancel is a kill and where a fault
ends only that process. Arrays travel as .npz files (no pickle); progress as lines on its
stdout. Never touches ``bpy``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import CancelToken, EngineError, Mesh

PROGRESS = "openlrm-quads:"  # starts a progress line of the remesh process: "openlrm-quads: 0.25 message"
SOURCE, QUADS, REFUSED = "source.npz", "quads.npz", "refused.txt"  # in the folder the process is given
DEFAULT_FACES = 10_000  # quads when the face budget is 0 ("keep every face" means nothing to a remesher)


class QuadsFailed(EngineError):
    """The remesh gave no quads: the triangle object stays, and this says why."""


@dataclass
class PolygonMesh:
    """A mesh of any polygons as Blender stores one: its faces' corners in one array."""

    vertices: np.ndarray  # (V, 3) float32
    sizes: np.ndarray  # (F,) int32: each face's number of corners
    corners: np.ndarray  # (sum of sizes,) int32: each corner's vertex, face after face
    colours: np.ndarray  # (V, 3) uint8 sRGB
    uvs: np.ndarray | None = None  # (corners, 2) float32, v up, when textured
    texture: np.ndarray | None = None  # (S, S, 3) uint8 sRGB, row 0 at the top, when textured

    @property
    def quad_share(self) -> float:
        return float(np.mean(self.sizes == 4)) if len(self.sizes) else 0.0

    def triangles(self) -> np.ndarray:
        """(T, 3) corners: each face cut into a fan from its first corner."""
        fans = self.sizes.astype(np.int64) - 2
        face = np.repeat(np.arange(len(fans)), fans)
        first = (np.cumsum(self.sizes) - self.sizes)[face]
        turn = np.arange(fans.sum()) - np.repeat(np.cumsum(fans) - fans, fans) + 1
        return np.stack([first, first + turn, first + turn + 1], axis=1).astype(np.int32)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class QuadRequest:
    command: tuple[str, ...]  # starts the remesh process; its folder is added after it
    faces: int = DEFAULT_FACES  # the budget, in quads
    texture_size: int = 0  # a textured mesh's new texture, pixels per side


class RemeshProcess:
    """The running remesh process; ``kill`` from any thread stops it at once."""

    def __init__(self, command: list[str], low_priority: bool) -> None:
        flags = 0
        if sys.platform == "win32":
            flags = subprocess.CREATE_NO_WINDOW | (subprocess.BELOW_NORMAL_PRIORITY_CLASS if low_priority else 0)
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, creationflags=flags
            )
        except OSError as error:
            raise QuadsFailed(f"could not start Blender for the remesh ({command[0]}): {error}") from error
        if low_priority and hasattr(os, "setpriority"):  # Blender's interface first
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, self.process.pid, 10)
        self.tail: collections.deque[str] = collections.deque(maxlen=20)

    def lines(self) -> collections.abc.Iterator[str]:
        """Its output, line by line, until it ends; what is not progress goes to our stderr."""
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith(PROGRESS):
                yield line.removeprefix(PROGRESS).strip()
            elif line.strip():
                self.tail.append(line)
                print(f"OpenLRM remesh: {line}", file=sys.stderr, flush=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def make_quads(
    mesh: Mesh, request: QuadRequest, step: Callable[[float, str], None], token: CancelToken,
    started: Callable[[RemeshProcess], None], low_priority: bool = False,
) -> PolygonMesh:  # fmt: skip
    """``mesh`` remeshed into quads, its colours (or texture) carried over. ``step`` hears the
    progress; ``started`` is given the process (for Cancel to kill). Raises ``QuadsFailed``
    with the reason, ``Cancelled`` once ``token`` is."""
    with tempfile.TemporaryDirectory(prefix="openlrm-quads-") as folder:
        source = dict(vertices=mesh.vertices, faces=mesh.faces, colours=mesh.colours_u8)
        if mesh.textured:
            source |= dict(uvs=mesh.uvs, texture=mesh.texture)
        np.savez(
            Path(folder) / SOURCE, **source, budget=np.int64(request.faces), texture_size=np.int64(request.texture_size)
        )
        token.check()
        process = RemeshProcess([*request.command, folder], low_priority)
        started(process)
        if token.cancelled:
            process.kill()
        for line in process.lines():
            fraction, _, message = line.partition(" ")
            step(float(fraction), message)
        code = process.process.wait()
        token.check()
        refused, made = Path(folder) / REFUSED, Path(folder) / QUADS
        if refused.exists():
            raise QuadsFailed(refused.read_text(encoding="utf-8").strip())
        if code != 0 or not made.exists():
            last = process.tail[-1] if process.tail else ""
            raise QuadsFailed(
                f"the remesh process stopped unexpectedly (exit status {code}){f': {last}' if last else ''}"
            )
        with np.load(made, allow_pickle=False) as arrays:
            return PolygonMesh(**{name: arrays[name] for name in arrays.files})
