"""What every triplane model family shares: three feature planes sampled at a point and
decoded by a small MLP into density and colour.

A point in the field's box (each coordinate within ``radius``) is scaled to [-1, 1] and
reads each plane at two of its coordinates (``plane_axes``: the first along the plane's
width). The samples are concatenated in plane order and go through the MLP. Its first
layer is linear, so it can be applied to the planes once, before sampling (``project``):
sampling the projected planes and summing gives the same hidden vector as sampling the
raw planes, concatenating and applying the layer, for far less work per point. The
families differ in the plane axes, the box, the activation and the output functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def bilinear(images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The published sampling: (B, C, H, W) at (B, h, w, 2) coordinates in [-1, 1] -> (B, C, h, w).

    Computed in float32 whatever the images' precision: PyTorch's CPU kernel returns NaN
    at some points for bfloat16 (seen with 2.13), and sampling costs little.
    """
    samples = F.grid_sample(images.float(), coords.float(), mode="bilinear", padding_mode="zeros", align_corners=False)
    return samples.to(images.dtype)


class TriplaneDecoder(nn.Module):
    """Density (N, M, 1) and colour (N, M, 3) at points of the planes' field."""

    plane_axes: tuple[tuple[int, int], ...]  # which coordinates of a point address each plane
    radius: float = 1.0  # the field's box: each coordinate within +-radius

    @property
    def net(self) -> nn.Sequential:
        """The MLP: Linear, activation, ..., Linear to (density, 3 colour features)."""
        raise NotImplementedError

    def activate_(self, features: torch.Tensor) -> torch.Tensor:
        """The MLP's activation, in place (the mesh's many points are memory-bound)."""
        raise NotImplementedError

    def density_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def colour_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def first_layer(self) -> nn.Linear:
        return self.net[0]

    def sample_planes(self, planes: torch.Tensor, unit_points: torch.Tensor) -> torch.Tensor:
        """Bilinear samples of each plane at points scaled to [-1, 1]: (N, 3, C, H, W) x (N, M, 3) -> (N, 3, M, C)."""
        batch, n_planes, channels, height, width = planes.shape
        coords = torch.stack([unit_points[..., list(axes)] for axes in self.plane_axes], dim=1)  # N, 3, M, 2
        samples = bilinear(
            planes.reshape(batch * n_planes, channels, height, width), coords.reshape(batch * n_planes, 1, -1, 2)
        )  # (N*3, C, 1, M)
        return samples.reshape(batch, n_planes, channels, -1).transpose(2, 3)

    def query(self, planes: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density and colour (float32) at points of the field's box, the published way."""
        features = self.sample_planes(planes, points / self.radius)  # N, 3, M, C
        features = features.permute(0, 2, 1, 3).flatten(2)  # N, M, 3C in plane order
        raw = self.net(features).float()  # the output functions in float32: exp overflows in half
        return self.density_from_raw(raw[..., :1]), self.colour_from_raw(raw[..., 1:])

    def project(self, planes: torch.Tensor) -> torch.Tensor:
        """Planes mapped through the first layer's slice for each plane: (N, 3, hidden, H, W), no bias."""
        weight = self.first_layer.weight  # hidden, 3C
        per_plane = weight.unflatten(1, (3, -1)).transpose(0, 1)  # 3, hidden, C
        return torch.einsum("poc,npchw->npohw", per_plane.to(planes.dtype), planes)

    def hidden_from_projected(self, projected: torch.Tensor, unit_points: torch.Tensor) -> torch.Tensor:
        """The first layer's output (before its activation) at points scaled to [-1, 1]: (N, M, hidden),
        channels first in memory: the planes are summed in the sampler's layout (N, 3, hidden, M),
        not across its transpose (TripoSR's colours for 500k vertices in 0.64 s, not 0.78; the
        same values), and the next layer reads either layout as fast."""
        samples = self.sample_planes(projected, unit_points).transpose(2, 3)  # the sampler's own layout
        return samples.sum(dim=1).transpose(1, 2) + self.first_layer.bias

    def decode_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """Raw outputs (..., 4) in float32 from the first layer's output, which is overwritten.
        The output functions then run in float32: TripoSR's exp(raw - 1) is inf in half
        precision from raw > 12, and an inf corner would snap the surface to grid points."""
        *inner, last = (layer for layer in self.net[1:] if isinstance(layer, nn.Linear))
        features = self.activate_(hidden)
        for layer in inner:
            features = self.activate_(layer(features))
        return last(features).float()
