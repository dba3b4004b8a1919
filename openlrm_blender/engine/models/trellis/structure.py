"""TRELLIS's first stage: which voxels of the grid the object occupies.

``StructureFlow`` (the published SparseStructureFlowModel) is a DiT over a dense res^3 latent
of 8 channels, its patches attending to themselves and to the image's tokens, the time
modulating every block. ``StructureDecoder`` (SparseStructureDecoder) turns the sampled latent
into an occupancy logit on a grid four times finer, through 3D convolutions that upsample by
sub-voxel shuffling; a voxel is occupied where its logit is above 0."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import FlowConfig, StructureDecoderConfig
from .layers import TimestepEmbedder, modulated_blocks, position_embedding


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, R, R, R) -> (B, (R/p)^3, C p^3): a patch's channels ordered (C, p, p, p)."""
    batch, channels, *sides = x.shape
    x = x.reshape(batch, channels, *(value for side in sides for value in (side // patch, patch)))
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(batch, channels * patch**3, -1)
    return x.transpose(1, 2)


def unpatchify(h: torch.Tensor, patch: int, side: int) -> torch.Tensor:
    """``patchify`` undone: (B, (R/p)^3, C p^3) -> (B, C, R, R, R)."""
    batch, _, width = h.shape
    cells = side // patch
    h = h.transpose(1, 2).reshape(batch, width // patch**3, patch, patch, patch, cells, cells, cells)
    return h.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(batch, -1, side, side, side)


class StructureFlow(nn.Module):
    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        width, cells = config.model_channels, config.resolution // config.patch_size
        grid = torch.stack(torch.meshgrid(*[torch.arange(cells)] * 3, indexing="ij"), dim=-1).reshape(-1, 3)
        self.register_buffer("pos_emb", position_embedding(grid, width))
        self.t_embedder = TimestepEmbedder(width)
        self.input_layer = nn.Linear(config.in_channels * config.patch_size**3, width)
        self.blocks = modulated_blocks(config)
        self.out_layer = nn.Linear(width, config.out_channels * config.patch_size**3)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The velocity at noisy latents (B, C, R, R, R), times t (B,) in 0..1000, image tokens (B, L, C')."""
        torso = self.blocks[0].self_attn.to_qkv.weight.dtype  # float16 where published so
        h = self.input_layer(patchify(x, self.config.patch_size)) + self.pos_emb[None]
        time = self.t_embedder(t).type(torso)
        h, cond = h.type(torso), cond.type(torso)
        for block in self.blocks:
            h = block(h, time, cond)
        h = h.type(x.dtype)
        h = self.out_layer(F.layer_norm(h, h.shape[-1:]))
        return unpatchify(h, self.config.patch_size, self.config.resolution)


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over a grid's channels (dim 1), in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float().movedim(1, -1)).movedim(-1, 1).type(x.dtype)


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = ChannelLayerNorm(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Upsample(nn.Module):
    """A convolution to eight times the channels, each voxel's eighths shuffled into its 2x2x2 children."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(channels_in, channels_out * 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        batch, channels, *sides = x.shape
        x = x.reshape(batch, channels // 8, 2, 2, 2, *sides).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(batch, channels // 8, *(2 * side for side in sides))


class StructureDecoder(nn.Module):
    def __init__(self, config: StructureDecoderConfig) -> None:
        super().__init__()
        channels = config.channels
        self.input_layer = nn.Conv3d(config.latent_channels, channels[0], 3, padding=1)
        self.middle_block = nn.Sequential(*(ResBlock(channels[0]) for _ in range(config.num_res_blocks_middle)))
        blocks: list[nn.Module] = []
        for index, width in enumerate(channels):
            blocks += [ResBlock(width) for _ in range(config.num_res_blocks)]
            if index < len(channels) - 1:
                blocks.append(Upsample(width, channels[index + 1]))
        self.blocks = nn.ModuleList(blocks)
        self.out_layer = nn.Sequential(
            ChannelLayerNorm(channels[-1]), nn.SiLU(), nn.Conv3d(channels[-1], config.out_channels, 3, padding=1)
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """(B, 8, R, R, R) latent -> (B, 1, 4R, 4R, 4R) occupancy logits."""
        torso = self.middle_block[0].conv1.weight.dtype if len(self.middle_block) else latent.dtype
        h = self.input_layer(latent).type(torso)
        h = self.middle_block(h)
        for block in self.blocks:
            h = block(h)
        return self.out_layer(h.type(latent.dtype))
