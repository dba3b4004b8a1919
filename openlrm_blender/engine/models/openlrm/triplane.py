"""OpenLRM's triplane decoder: a point (x, y, z) reads plane 0 at (x, y), plane 1 at
(x, z) and plane 2 at (z, y), over the box [-1, 1]^3; a ReLU MLP; density
softplus(raw - 1), colour a sigmoid stretched by 0.1% either side."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..triplane import TriplaneDecoder

HIDDEN = 64


class OpenLRMDecoder(TriplaneDecoder):
    """The published checkpoint's ``synthesizer`` (see ``weights.PUBLISHED_NAMES``)."""

    plane_axes = ((0, 1), (0, 2), (2, 1))

    def __init__(self, triplane_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Module()
        self.mlp.net = nn.Sequential(
            nn.Linear(3 * triplane_dim, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, 4),
        )

    @property
    def net(self) -> nn.Sequential:
        return self.mlp.net

    def activate_(self, features: torch.Tensor) -> torch.Tensor:
        return features.relu_()

    def density_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw - 1.0)

    def colour_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) * (1 + 2 * 0.001) - 0.001
