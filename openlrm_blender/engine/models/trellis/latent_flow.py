"""TRELLIS's second stage: the structured latent's flow (the published SLatFlowModel), 8
channels on every occupied voxel.

The voxels go in through sparse res-blocks that halve them ``patch_size`` times (a patch of
2x2x2 voxels becomes one token), the tokens through a DiT of full self-attention over the
whole object and cross-attention to the image, and back out through res-blocks that copy the
tokens to their voxels again, each taking the features the way in had at its resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import FlowConfig
from .layers import LayerNorm32, TimestepEmbedder, modulated_blocks, position_embedding
from .sparse import Level, SparseConv3d


class SparseResBlock(nn.Module):
    """norm, SiLU, conv; norm scaled and shifted by the time, SiLU, conv; plus the input (its
    width matched by a linear layer). Resampled first where it halves or doubles the voxels."""

    def __init__(self, channels: int, time_channels: int, channels_out: int, resample: str | None = None) -> None:
        super().__init__()
        self.resample = resample  # "down", "up" or None
        self.norm1 = LayerNorm32(channels, elementwise_affine=True, eps=1e-6)
        self.norm2 = LayerNorm32(channels_out, elementwise_affine=False, eps=1e-6)
        self.conv1 = SparseConv3d(channels, channels_out)
        self.conv2 = SparseConv3d(channels_out, channels_out)
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(time_channels, 2 * channels_out))
        self.skip_connection = nn.Linear(channels, channels_out) if channels != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, time: torch.Tensor, level: Level) -> torch.Tensor:
        """``x`` on the voxels of ``level`` once resampled (the caller keeps the levels)."""
        scale, shift = self.emb_layers(time).type(x.dtype).chunk(2, dim=1)
        h = self.conv1(F.silu(self.norm1(x)), level.neighbours)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        return self.conv2(h, level.neighbours) + self.skip_connection(x)


class LatentFlow(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        width, io_widths = config.model_channels, list(config.io_block_channels)
        if 2 ** len(io_widths) != config.patch_size:
            raise ValueError(f"{len(io_widths)} res-block stages cannot make patches of {config.patch_size}")
        self.t_embedder = TimestepEmbedder(width)
        self.input_layer = nn.Linear(config.in_channels, io_widths[0] if io_widths else width)
        self.input_blocks = nn.ModuleList()
        for channels, following in zip(io_widths, [*io_widths[1:], width], strict=True):
            self.input_blocks.extend(
                SparseResBlock(channels, width, channels) for _ in range(config.num_io_res_blocks - 1)
            )
            self.input_blocks.append(SparseResBlock(channels, width, following, "down"))
        self.blocks = modulated_blocks(config)
        skip = 2 if config.use_skip_connection else 1
        self.out_blocks = nn.ModuleList()
        for channels, previous in zip(reversed(io_widths), [width, *reversed(io_widths[1:])], strict=True):
            self.out_blocks.append(SparseResBlock(previous * skip, width, channels, "up"))
            self.out_blocks.extend(
                SparseResBlock(channels * skip, width, channels) for _ in range(config.num_io_res_blocks - 1)
            )
        self.out_layer = nn.Linear(io_widths[0] if io_widths else width, config.out_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, voxels: Level) -> torch.Tensor:
        """The velocity (N, C) at noisy features (N, C) on ``voxels``, time t (1,), image tokens (1, L, C')."""
        torso = self.blocks[0].self_attn.to_qkv.weight.dtype  # float16 where published so
        h = self.input_layer(x).type(torso)
        time = self.t_embedder(t).type(torso)
        cond = cond.type(torso)
        levels, skips = [voxels], []
        for block in self.input_blocks:
            if block.resample == "down":
                coarser, down = levels[-1].halved()
                h = down.mean(h)
                levels.append(coarser)
            h = block(h, time, levels[-1])
            skips.append(h)
        tokens = h + position_embedding(levels[-1].coords, h.shape[1]).type(torso)
        tokens = tokens[None]
        for block in self.blocks:
            tokens = block(tokens, time, cond)
        h = tokens[0]
        for block, skip in zip(self.out_blocks, reversed(skips), strict=True):
            if self.config.use_skip_connection:
                h = torch.cat([h, skip], dim=1)
            if block.resample == "up":
                levels.pop()
                h = levels[-1].halved()[1].copy_back(h)
            h = block(h, time, levels[-1])
        h = F.layer_norm(h, h.shape[-1:])
        return self.out_layer(h.type(x.dtype))
