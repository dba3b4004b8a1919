"""Triplanes: sampling the three planes at points and decoding density and colour.

A point (x, y, z) reads plane 0 at (x, y), plane 1 at (x, z) and plane 2 at (z, y),
the first coordinate along the plane's width. The decoder's first layer is linear, so
it can be applied to the planes once, before sampling (``project``): sampling the
projected planes and summing gives the same hidden vector as sampling the raw planes,
concatenating and applying the layer, for far less work per point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 64
# Which coordinates of a point address each plane, as (width axis, height axis).
PLANE_AXES = ((0, 1), (0, 2), (2, 1))


def bilinear(images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The published sampling: (B, C, H, W) at (B, h, w, 2) coordinates in [-1, 1] -> (B, C, h, w).

    Computed in float32 whatever the images' precision: PyTorch's CPU kernel returns NaN
    at some points for bfloat16 (seen with 2.13), and sampling costs little.
    """
    samples = F.grid_sample(
        images.float(), coords.float(), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return samples.to(images.dtype)


def sample_planes(planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of each plane: (N, 3, C, H, W) x (N, M, 3) -> (N, 3, M, C)."""
    batch, n_planes, channels, height, width = planes.shape
    coords = torch.stack([points[..., list(axes)] for axes in PLANE_AXES], dim=1)  # N, 3, M, 2
    samples = bilinear(
        planes.reshape(batch * n_planes, channels, height, width), coords.reshape(batch * n_planes, 1, -1, 2)
    )  # (N*3, C, 1, M)
    return samples.reshape(batch, n_planes, channels, -1).transpose(2, 3)


def density_from_raw(raw: torch.Tensor) -> torch.Tensor:
    return F.softplus(raw - 1.0)


def colour_from_raw(raw: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(raw) * (1 + 2 * 0.001) - 0.001


class TriplaneDecoder(nn.Module):
    """Density and colour at points: an MLP from three concatenated plane features (the
    published checkpoint's ``synthesizer``, see ``weights.PUBLISHED_NAMES``)."""

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
    def first_layer(self) -> nn.Linear:
        return self.mlp.net[0]

    def query(self, planes: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (N, M, 1) and colour (N, M, 3) at points, the published way."""
        features = sample_planes(planes, points)  # N, 3, M, C
        features = features.permute(0, 2, 1, 3).flatten(2)  # N, M, 3C in plane order
        raw = self.mlp.net(features)
        return density_from_raw(raw[..., :1]), colour_from_raw(raw[..., 1:])

    def project(self, planes: torch.Tensor) -> torch.Tensor:
        """Planes mapped through the first layer's slice for each plane: (N, 3, HIDDEN, H, W), no bias."""
        weight = self.first_layer.weight  # HIDDEN, 3C
        per_plane = weight.unflatten(1, (3, -1)).transpose(0, 1)  # 3, HIDDEN, C
        return torch.einsum("poc,npchw->npohw", per_plane.to(planes.dtype), planes)

    def hidden_from_projected(self, projected: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The first layer's output (before ReLU) at points, from projected planes: (N, M, HIDDEN)."""
        return sample_planes(projected, points).sum(dim=1) + self.first_layer.bias

    def decode_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Raw outputs (..., 4) from the first layer's output, which is overwritten:
        the ReLUs work in place, as the mesh's many points are memory-bound."""
        *inner, last = (layer for layer in self.mlp.net[1:] if isinstance(layer, nn.Linear))
        features = hidden.relu_()
        for layer in inner:
            features = layer(features).relu_()
        return last(features)
