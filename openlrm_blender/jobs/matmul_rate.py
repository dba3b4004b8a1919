"""This machine's rates (matrix products, fused attention), for the estimate of a flow model's
run time on the CPU (``engine.models.estimate``): timed once by the model's process (``worker.server``: PyTorch's
products, where the runs compute; Blender's process never imports PyTorch), then kept for
the session by the add-on and on disk in its user folder (``RECORD``), so the next session
shows the estimate at once. A rate holds for one PyTorch and one CPU: a record another
PyTorch or another processor made is not read. Never touches ``bpy``."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine.errors import EngineError, error_of_kind
from ..engine.models.estimate import Speed, cpu_name
from ..worker.client import keep_idle, take_worker
from .task import Task

RECORD = "matmul-rate.json"  # in the add-on's user folder (addon.preferences.pytorch_root)


@dataclass(frozen=True)
class Rate:
    gflops: dict[str, float | None]  # products per precision measured ("float32", "bfloat16"); None: only emulated
    attention_gflops: dict[str, float | None]  # fused attention, the same precisions
    torch: str  # the PyTorch version that measured it
    cpu: str  # ``estimate.cpu_name()`` where it was measured

    def speed(self, precision: str) -> Speed | None:
        """The rates in ``precision``; None where its arithmetic is only emulated here."""
        products, attention = self.gflops[precision], self.attention_gflops[precision]
        return None if products is None or attention is None else Speed(products, attention)


def load(folder: Path, torch_version: str | None) -> Rate | None:
    """The rate recorded in ``folder``, if this PyTorch measured it on this CPU."""
    try:
        rate = Rate(**json.loads((folder / RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return rate if rate.torch == torch_version and rate.cpu == cpu_name() and rate.gflops else None


def save(folder: Path, rate: Rate) -> None:
    """Keep ``rate`` for later sessions; a folder that cannot be written only costs the next
    session a new timing."""
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RECORD).write_text(json.dumps(asdict(rate), indent=1), encoding="utf-8")


class Measurement(Task):
    """The model's process times its products (starting it, and PyTorch in it, if none is
    idle: a few seconds), in a thread; the process stays for the next run."""

    thread_name = "openlrm-matmul-rate"

    def __init__(self, precisions: tuple[str, ...], folder: Path, low_priority: bool) -> None:
        super().__init__()
        self.precisions, self.folder, self.low_priority = precisions, folder, low_priority
        self.message = "timing this machine's matrix products"

    def work(self) -> Rate:
        worker = take_worker(self.low_priority)
        try:
            worker.send("rate", precisions=list(self.precisions))
            message = worker.receive()
        finally:
            if worker.alive:
                keep_idle(worker)
            else:
                worker.stop()
        if message is None:
            raise worker.death()
        kind, reply, _ = message
        if kind == "error":
            raise error_of_kind(reply["error_kind"], reply["message"])
        earlier = load(self.folder, reply["torch"])  # another precision's, measured before
        gflops, attention = ({**(getattr(earlier, name) if earlier else {}), **reply[name]}
                             for name in ("gflops", "attention_gflops"))  # fmt: skip
        rate = Rate(gflops, attention, reply["torch"], cpu_name())
        save(self.folder, rate)
        return rate

    def explain(self, error: EngineError | OSError | None) -> str:
        return "cancelled" if error is None else f"could not time this machine's matrix products: {error}"
