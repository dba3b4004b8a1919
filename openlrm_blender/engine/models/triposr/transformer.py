"""TripoSR's triplane transformer (the published ``Transformer1D``): GroupNorm and a
projection in, then blocks of self-attention, cross-attention to the image tokens and a
GEGLU feed-forward, each pre-norm with a residual; a projection out plus the input.

Note the order: self-attention before cross-attention (OpenLRM has it the other way),
and no camera modulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TripoSRConfig


class Attention(nn.Module):
    """Multi-head attention; keys and values from ``context`` (cross) or ``x`` itself (self)."""

    def __init__(self, width: int, heads: int, head_dim: int, context_width: int | None = None) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(width, inner, bias=False)
        self.to_k = nn.Linear(context_width or width, inner, bias=False)
        self.to_v = nn.Linear(context_width or width, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, width)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q, k, v = (
            proj(source).unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)
            for proj, source in ((self.to_q, x), (self.to_k, context), (self.to_v, context))
        )
        return self.to_out[0](F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))


class GEGLU(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, 2 * hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return F.gelu(gate).mul_(hidden)  # into the activation's own tensor: one 50 MB block fewer per layer


class FeedForward(nn.Module):
    """``net.0`` the GEGLU, ``net.1`` a dropout (no weights), ``net.2`` the output layer."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([GEGLU(width, 4 * width), nn.Identity(), nn.Linear(4 * width, width)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class Block(nn.Module):
    def __init__(self, width: int, heads: int, head_dim: int, context_width: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn1 = Attention(width, heads, head_dim)
        self.norm2 = nn.LayerNorm(width)
        self.attn2 = Attention(width, heads, head_dim, context_width)
        self.norm3 = nn.LayerNorm(width)
        self.ff = FeedForward(width)

    def forward(self, x: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), image_tokens)
        return x + self.ff(self.norm3(x))


class TriplaneTransformer(nn.Module):
    """Tokens (N, C, T) channels first, image tokens (N, L, width) -> tokens (N, C, T)."""

    def __init__(self, config: TripoSRConfig) -> None:
        super().__init__()
        channels, inner = config.num_channels, config.num_attention_heads * config.attention_head_dim
        self.norm = nn.GroupNorm(config.norm_num_groups, channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            Block(inner, config.num_attention_heads, config.attention_head_dim, config.cross_attention_dim)
            for _ in range(config.num_layers)
        )
        self.proj_out = nn.Linear(inner, channels)

    def forward(self, tokens: torch.Tensor, image_tokens: torch.Tensor, after_layer=None) -> torch.Tensor:
        x = self.proj_in(self.norm(tokens).transpose(1, 2))
        for index, block in enumerate(self.transformer_blocks):
            x = block(x, image_tokens)
            if after_layer is not None:
                after_layer(index + 1, len(self.transformer_blocks))
        return self.proj_out(x).transpose(1, 2) + tokens
