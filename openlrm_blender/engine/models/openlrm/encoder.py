"""DINOv2 with registers: the image encoder of OpenLRM v1.1.

Module and parameter names follow the published state dict
(``encoder.model.blocks.0.attn.qkv.weight`` ...), so weights load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..vit_layers import Mlp

PATCH_SIZE = 14
POS_EMBED_GRID = 37  # the stored position table covers 37 x 37 patches (518 px)
NUM_REGISTERS = 4


class PatchEmbed(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads)
        self.ls1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = Mlp(width, 4 * width)
        self.ls2 = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2(nn.Module):
    """ViT-with-registers backbone; returns normed class + patch tokens."""

    def __init__(self, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + POS_EMBED_GRID**2, width))
        self.register_tokens = nn.Parameter(torch.zeros(1, NUM_REGISTERS, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def position_embedding(self, grid: int) -> torch.Tensor:
        """The stored 37x37 table resized to ``grid`` x ``grid`` (class position kept)."""
        if grid == POS_EMBED_GRID:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        width = patch_pos.shape[-1]
        # On the CPU in float32: a small table resized once per run, and Apple MPS has no
        # antialiased bicubic kernel before recent PyTorch releases.
        table = patch_pos.float().cpu().reshape(1, POS_EMBED_GRID, POS_EMBED_GRID, width).permute(0, 3, 1, 2)
        scale = grid / POS_EMBED_GRID
        table = F.interpolate(table, scale_factor=(scale, scale), mode="bicubic", antialias=True)
        if table.shape[-1] != grid:
            raise ValueError(f"position table resized to {table.shape[-1]}, expected {grid}")
        patch_pos = table.permute(0, 2, 3, 1).reshape(1, grid * grid, width).to(cls_pos.device, cls_pos.dtype)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        if height != width or height % PATCH_SIZE:
            raise ValueError(f"image must be square with a side divisible by {PATCH_SIZE}, got {height}x{width}")
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x], dim=1)
        x = x + self.position_embedding(height // PATCH_SIZE)
        x = torch.cat([x[:, :1], self.register_tokens.expand(batch, -1, -1), x[:, 1:]], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return torch.cat([x[:, :1], x[:, 1 + NUM_REGISTERS :]], dim=1)


class ImageEncoder(nn.Module):
    """Wrapper that gives the backbone its published prefix, ``encoder.model``."""

    def __init__(self, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.model = DinoV2(width, depth, heads)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)
