"""TripoSR's triplane decoder (the published ``NeRFMLP`` queried by its renderer): a point
(x, y, z) of the box (-0.87, 0.87)^3 reads plane 0 at (x, y), plane 1 at (x, z) and plane 2
at (y, z) (OpenLRM reads its plane 2 at (z, y)); a SiLU MLP; density exp(raw + bias),
colour sigmoid(features)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..triplane import TriplaneDecoder
from .config import TripoSRConfig


class TripoSRDecoder(TriplaneDecoder):
    plane_axes = ((0, 1), (0, 2), (1, 2))

    def __init__(self, config: TripoSRConfig) -> None:
        super().__init__()
        self.radius = config.radius
        self.density_bias = config.density_bias
        width = config.decoder_neurons
        layers: list[nn.Module] = [nn.Linear(config.decoder_in_channels, width), nn.SiLU()]
        for _ in range(config.decoder_hidden_layers - 1):
            layers += [nn.Linear(width, width), nn.SiLU()]
        self.layers = nn.Sequential(*layers, nn.Linear(width, 4))

    @property
    def net(self) -> nn.Sequential:
        return self.layers

    def activate_(self, features: torch.Tensor) -> torch.Tensor:
        return F.silu(features, inplace=True)

    def density_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.exp(raw + self.density_bias)

    def colour_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw)
