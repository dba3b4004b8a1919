"""TRELLIS's sampler (the published ``FlowEulerGuidanceIntervalSampler``), shared by both
stages: Euler steps of a rectified flow from t = 1 (noise) to 0, on a rescaled time grid,
with classifier-free guidance only inside an interval of t.

Several photos of one object (the published ``run_multi_image``): in "stochastic" mode step
i is an ordinary step conditioned on photo i mod n; in "multidiffusion" mode every call
averages the conditional velocities of all the photos. The unconditional input is one
photo's zeros either way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import SamplerConfig

VIEW_MODES = ("stochastic", "multidiffusion")
# The model at (x, t * 1000, condition) -> velocity.
Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Guided:
    """One stage's guided velocity for one or several photos (``cond``: one row each)."""

    def __init__(self, model: Velocity, cond: torch.Tensor, negative: torch.Tensor, config: SamplerConfig,
                 guidance: float, mode: str = "stochastic") -> None:  # fmt: skip
        if mode not in VIEW_MODES:
            raise ValueError(f"unknown view mode {mode!r}: use {' or '.join(VIEW_MODES)}")
        self.model, self.cond, self.negative, self.config = model, cond, negative, config
        self.guidance, self.mode = guidance, mode

    def __call__(self, x: torch.Tensor, t: float, step: int) -> torch.Tensor:
        time = torch.tensor([1000 * t], dtype=torch.float32, device=x.device)  # one object
        if self.mode == "stochastic":
            index = step % len(self.cond)
            conditional = self.model(x, time, self.cond[index : index + 1])
        else:  # the published running sum over the photos, from 0
            conditional = sum(self.model(x, time, self.cond[index : index + 1]) for index in range(len(self.cond)))
            conditional = conditional / len(self.cond)
        if not self.config.guided(t, self.guidance):  # at guidance 0 the published sum is the conditional one
            return conditional
        unconditional = self.model(x, time, self.negative)
        return (1 + self.guidance) * conditional - self.guidance * unconditional


def sample(velocity: Guided, noise: torch.Tensor, steps: int, after_step: Callable[[int], None] | None = None):
    """The stage's sample from ``noise`` after ``steps`` Euler steps."""
    times = velocity.config.times(steps)
    x = noise
    for index in range(steps):
        t, t_previous = times[index], times[index + 1]
        x = x - (t - t_previous) * velocity(x, t, index)
        if after_step is not None:
            after_step(index + 1)
    return x
