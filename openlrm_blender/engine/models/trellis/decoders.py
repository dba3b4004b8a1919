"""The structured latent's decoders (the published SLat*Decoder): one sparse transformer torso
over the object's voxels (shifted-window attention), then each its own head.

- ``GaussianDecoder``: 32 Gaussians per voxel, their raw parameters (``gaussians`` activates them).
- ``RadianceDecoder``: a radiance field's vectors per voxel: a mesh needs nothing of it, so a
  run neither fetches nor loads it; it is here to check its checkpoint's published layout.
- ``MeshDecoder``: the voxels subdivided twice (4x the resolution) through sparse res-blocks,
  then per cube the features FlexiCubes takes (signed distances, deformations and colours at
  its corners, its weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import LatentDecoderConfig
from .layers import TransformerBlock, position_embedding
from .sparse import Level, SparseConv3d, Windows, subdivide

GROUPS = 32  # the mesh decoder's group norms


class LatentDecoder(nn.Module):
    """The shared torso: the latent to the model's width, positions added, then transformer
    blocks (shifted-window attention where ``attn_mode`` is "swin"), in the torso's precision."""

    def __init__(self, config: LatentDecoderConfig, out_channels: int) -> None:
        super().__init__()
        if config.attn_mode not in ("swin", "full") or config.pe_mode != "ape":
            raise ValueError(f"a latent decoder with {config.attn_mode} attention and {config.pe_mode} positions")
        self.config = config
        width = config.model_channels
        self.input_layer = nn.Linear(config.latent_channels, width)
        heads, ratio = config.heads, config.mlp_ratio
        self.blocks = nn.ModuleList(
            TransformerBlock(width, heads, ratio, config.qk_rms_norm) for _ in range(config.num_blocks)
        )
        self.out_layer = nn.Linear(self.head_channels(width), out_channels)

    def head_channels(self, width: int) -> int:
        return width

    def torso(self, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        torso = self.blocks[0].attn.to_qkv.weight.dtype
        h = self.input_layer(latent) + position_embedding(coords, self.config.model_channels)
        h = h.type(torso)[None]
        size = self.config.window_size
        windows = {}
        for index, block in enumerate(self.blocks):
            shift = size // 2 * (index % 2)
            if self.config.attn_mode == "swin" and shift not in windows:
                windows[shift] = Windows(coords, size, shift)
            h = block(h, windows.get(shift))
        return h[0]

    def forward(self, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """(N, 8) latent on (N, 3) voxels -> (N, out) raw outputs."""
        h = self.torso(latent, coords).type(latent.dtype)
        return self.out_layer(F.layer_norm(h, h.shape[-1:]))


class GaussianDecoder(LatentDecoder):
    def __init__(self, config: LatentDecoderConfig) -> None:
        count = config.representation_config["num_gaussians"]
        super().__init__(config, count * (3 + 3 + 3 + 4 + 1))  # offset, colour, scale, rotation, opacity
        self.register_buffer("offset_perturbation", torch.zeros(count, 3))


class RadianceDecoder(LatentDecoder):
    def __init__(self, config: LatentDecoderConfig) -> None:
        rank, dim = config.representation_config["rank"], config.representation_config["dim"]
        super().__init__(config, rank * 3 * dim + rank + rank * 3)  # vectors, densities, colours


class SubdivideBlock(nn.Module):
    """Group norm and SiLU, each voxel made eight, two convolutions at the new resolution, plus
    the subdivided input (its width matched by a 1x1x1 convolution)."""

    def __init__(self, channels: int, channels_out: int) -> None:
        super().__init__()
        self.act_layers = nn.Sequential(nn.GroupNorm(GROUPS, channels), nn.SiLU())
        self.out_layers = nn.Sequential(
            SparseConv3d(channels, channels_out), nn.GroupNorm(GROUPS, channels_out), nn.SiLU(),
            SparseConv3d(channels_out, channels_out),
        )  # fmt: skip
        self.skip_connection = SparseConv3d(channels, channels_out, kernel=1) if channels != channels_out else None

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act_layers[1](group_norm(self.act_layers[0], x))
        children, h = subdivide(coords, h)
        x = subdivide(coords, x)[1]
        neighbours = Level(children).neighbours
        conv1, norm, _, conv2 = self.out_layers
        h = conv2(F.silu(group_norm(norm, conv1(h, neighbours))), neighbours)
        skip = x if self.skip_connection is None else self.skip_connection(x, neighbours)
        return h + skip, children


def group_norm(norm: nn.GroupNorm, feats: torch.Tensor) -> torch.Tensor:
    """A group norm over one object's voxels (all rows one sample), in float32."""
    return norm(feats.float().T[None])[0].T.type(feats.dtype)


class MeshDecoder(LatentDecoder):
    """Features for FlexiCubes at 4x the latent's resolution: per cube, signed distances (8),
    deformations (8 x 3), colours and normals (8 x 6, where ``use_color``) at its corners, and
    its 21 weights."""

    def __init__(self, config: LatentDecoderConfig) -> None:
        width = config.model_channels
        colour = bool(config.representation_config.get("use_color", False))
        super().__init__(config, 8 + 8 * 3 + (8 * 6 if colour else 0) + 21)
        self.uses_colour = colour
        self.upsample = nn.ModuleList([SubdivideBlock(width, width // 4), SubdivideBlock(width // 4, width // 8)])

    def head_channels(self, width: int) -> int:
        return width // 8

    def forward(self, latent: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 8) latent on (N, 3) voxels -> the cubes' (M, 3) coordinates at 4x the
        resolution (parent by parent) and their (M, 101) features."""
        h = self.torso(latent, coords)
        for block in self.upsample:
            h, coords = block(h, coords)
        return coords, self.out_layer(h.type(latent.dtype))
