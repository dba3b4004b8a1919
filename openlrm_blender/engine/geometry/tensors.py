"""NumPy at the edges, tensors inside: the stages that run on the run's device (marching cubes,
the photo stage) take the arrays their callers hold, or tensors that stay where they are, and
give back what they were given; on the CPU, on one thread (``one_thread``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
import torch

Arguments = ParamSpec("Arguments")
Result = TypeVar("Result")


def compute_device(device: torch.device | str | None, given: np.ndarray | torch.Tensor | None = None) -> torch.device:
    """Where float64 work for ``device`` (None: where ``given`` is, a tensor's device or the
    CPU) runs: there, but on the CPU for Apple's MPS, which has no float64 (marching cubes'
    vertices and the depth test are float64, as published)."""
    if device is None:
        device = given.device if isinstance(given, torch.Tensor) else "cpu"
    device = torch.device(device)
    return torch.device("cpu") if device.type == "mps" else device


def tensor(values: np.ndarray | torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """``values`` as a tensor on ``device`` (None: a tensor where it is, an array on the CPU),
    an array's memory shared where it can be."""
    if isinstance(values, np.ndarray):
        values = torch.from_numpy(np.ascontiguousarray(values))
    return values if device is None else values.to(device)


def given_as(given: np.ndarray | torch.Tensor, result: torch.Tensor) -> np.ndarray | torch.Tensor:
    """``result`` as an array where ``given`` was one, else the tensor."""
    return result.cpu().numpy() if isinstance(given, np.ndarray) else result


def one_thread(function: Callable[Arguments, Result]) -> Callable[Arguments, Result]:
    """``function`` with PyTorch's CPU work on one thread. These stages are a few dozen
    operations on at most a few million values each: a second thread barely speeds them up
    (marching cubes at 256^3 on a quiet 2-core machine: 0.065 s on two threads, 0.08 on one),
    but when the machine's cores are busy each operation waits for it (0.5 to 0.7 s on two
    threads, 0.08 to 0.1 on one; the photo stage's blend up to 20 times as long). A GPU's
    work is not the CPU threads', so it is the same either way."""

    @functools.wraps(function)
    def on_one_thread(*args: Arguments.args, **kwargs: Arguments.kwargs) -> Result:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return on_one_thread
