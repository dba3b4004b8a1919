"""TripoSG's rectified-flow schedule: the noise levels sigma from 1 down to 0 in equal steps,
the transformer's time 1000 sigma, and an Euler step along the predicted velocity."""

from __future__ import annotations

import numpy as np
import torch

from .config import SchedulerConfig


def flow_schedule(steps: int, config: SchedulerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmas (steps + 1,) ending at 0 and the times (steps,) the transformer is given, as the
    published scheduler makes them: in float64, shifted, then float32."""
    train = config.num_train_timesteps
    sigmas = np.array([(1.0 - index / steps) * train for index in range(steps)]) / train
    sigmas = config.shift * sigmas / (1 + (config.shift - 1) * sigmas)
    sigmas = torch.from_numpy(sigmas).to(torch.float32)
    return torch.cat([sigmas, torch.zeros(1)]), sigmas * train


def euler_step(
    latents: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor
) -> torch.Tensor:
    """One step toward sigma_next, in float32."""
    return latents.float() + (sigma - sigma_next) * velocity.float()
