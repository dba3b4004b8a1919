"""TripoSG's sampling: noise drawn from the seed on the CPU (so a seed gives the same shape on
every device), then the flow integrated step by step with classifier-free guidance, the
image's tokens against all-zero ones."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import SchedulerConfig
from .scheduler import euler_step, flow_schedule
from .transformer import FlowTransformer


def initial_noise(seed: int, tokens: int, channels: int) -> torch.Tensor:
    """(1, tokens, channels) float32, from a CPU generator: the published pipeline's noise."""
    return torch.randn((1, tokens, channels), generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


def velocity(
    transformer: FlowTransformer, latents: torch.Tensor, t: torch.Tensor, image_tokens: torch.Tensor, guidance: float
) -> torch.Tensor:
    """The guided velocity: the unconditional and the conditional prediction in one batch,
    v_u + guidance (v_c - v_u); with guidance 1 or less, the conditional one alone."""
    dtype = next(transformer.parameters()).dtype
    if guidance <= 1.0:
        return transformer(latents.to(dtype), t.expand(len(latents)), image_tokens).float()
    batch = torch.cat([latents, latents]).to(dtype)
    conditions = torch.cat([torch.zeros_like(image_tokens), image_tokens])
    unconditional, conditional = transformer(batch, t.expand(len(batch)), conditions).float().chunk(2)
    return unconditional + guidance * (conditional - unconditional)


def sample(
    transformer: FlowTransformer, image_tokens: torch.Tensor, noise: torch.Tensor, steps: int, guidance: float,
    config: SchedulerConfig, after_step: Callable[[int], None] | None = None,
) -> torch.Tensor:  # fmt: skip
    """Latents (1, T, C) float32 from ``noise`` after ``steps`` guided Euler steps."""
    sigmas, times = flow_schedule(steps, config)
    device = image_tokens.device
    latents = noise.to(device)
    for index in range(steps):
        v = velocity(transformer, latents, times[index].to(device), image_tokens, guidance)
        latents = euler_step(latents, v, sigmas[index].to(device), sigmas[index + 1].to(device))
        if after_step is not None:
            after_step(index + 1)
    return latents
