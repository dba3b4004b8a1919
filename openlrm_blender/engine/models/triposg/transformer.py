"""TripoSG's flow transformer: the velocity of the latent tokens at a time of the flow, given
the image's tokens. Written from the published specification (its source file is under
another licence).

The time's sinusoidal features go through an MLP into one token put before the projected
latents. Each block is pre-norm: self-attention, cross-attention to the image tokens, a GELU
feed-forward; queries and keys are RMS-normed per head. The blocks form a U: each of the
first half keeps its output, and each of the second half starts from a linear layer (then a
LayerNorm) over the last kept output and its input, last in, first out; the middle block
does neither. The output drops the time token and projects back to the latents' width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention, FeedForward
from .config import TransformerConfig

MAX_PERIOD = 10000.0


def time_features(t: torch.Tensor, width: int) -> torch.Tensor:
    """(N,) times -> (N, width) float32: [sin(t f_i), cos(t f_i)], f_i = 10000^(-i / (width/2))."""
    half = width // 2
    frequencies = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class TimeProjection(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(width, 4 * width)
        self.linear_2 = nn.Linear(4 * width, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(features)))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig, takes_skip: bool) -> None:
        super().__init__()
        width, heads = config.width, config.num_attention_heads
        if takes_skip:
            self.skip_linear = nn.Linear(2 * width, width)
            self.skip_norm = nn.LayerNorm(width)
        self.norm1 = nn.LayerNorm(width)
        self.attn1 = Attention(width, heads, qk_norm=True)
        self.norm2 = nn.LayerNorm(width)
        self.attn2 = Attention(width, heads, config.cross_attention_dim, qk_norm=True)
        self.norm3 = nn.LayerNorm(width)
        self.ff = FeedForward(width, 4 * width)
        self.takes_skip = takes_skip

    def forward(self, x: torch.Tensor, image_tokens: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.takes_skip:
            x = self.skip_norm(self.skip_linear(torch.cat([skip, x], dim=-1)))  # the skip first, then the norm
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), image_tokens)
        return x + self.ff(self.norm3(x))


class FlowTransformer(nn.Module):
    """Latents (N, T, C) at times (N,) with image tokens (N, L, D) -> velocities (N, T, C)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        width, layers = config.width, config.num_layers
        self.time_proj = TimeProjection(width)
        self.proj_in = nn.Linear(config.in_channels, width)
        self.blocks = nn.ModuleList(Block(config, takes_skip=index > layers // 2) for index in range(layers))
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, config.in_channels)
        self.width = width

    def forward(self, latents: torch.Tensor, t: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        time = self.time_proj(time_features(t, self.width).to(latents.dtype))
        x = torch.cat([time[:, None], self.proj_in(latents)], dim=1)
        kept: list[torch.Tensor] = []
        middle = len(self.blocks) // 2
        for index, block in enumerate(self.blocks):
            x = block(x, image_tokens, kept.pop() if block.takes_skip else None)
            if index < middle:
                kept.append(x)
        return self.proj_out(self.norm_out(x)[:, 1:])
