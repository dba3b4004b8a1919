"""TripoSG's attention (its transformer's and its VAE's), under the published state dict's names
(``to_q``, ``to_k``, ``to_v``, ``to_out.0``, ``norm_q``, ``norm_k``, ``norm_cross``).

Heads are cut before queries, keys and values are told apart: self-attention's projections
are concatenated [q | k | v] and cut into heads of three head-widths, head j's query, key and
value being the thirds of its cut; cross-attention's [k | v] is cut into heads of two. So
the three projections run as one product, and a head's vectors come out of it by a reshape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm of each head's vector, with a learned scale (the mean in float32)."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        return (x * torch.rsqrt(variance + self.eps)).to(self.weight.dtype) * self.weight


class Attention(nn.Module):
    """Self-attention (``context`` None) or cross-attention to ``context``; without biases on
    the projections in, with one on the projection out. ``qk_norm``: RMSNorm on each head's
    queries and keys (the transformer's; the VAE has none). ``context_norm``: a LayerNorm on
    the context before its keys and values (the VAE decoder's cross-attention)."""

    def __init__(
        self, width: int, heads: int, context_width: int | None = None, qk_norm: bool = False,
        context_norm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        context_width = context_width or width
        self.heads, self.head_width = heads, width // heads
        self.to_q = nn.Linear(width, width, bias=False)
        self.to_k = nn.Linear(context_width, width, bias=False)
        self.to_v = nn.Linear(context_width, width, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(width, width)])
        if qk_norm:
            self.norm_q = RMSNorm(self.head_width)
            self.norm_k = RMSNorm(self.head_width)
        if context_norm:
            self.norm_cross = nn.LayerNorm(context_width)
        self.qk_norm = qk_norm

    def project_context(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (N, heads, L, head width) of ``context``: worth keeping where one
        context serves many queries (the VAE's latents, every point of the grid)."""
        if hasattr(self, "norm_cross"):
            context = self.norm_cross(context)
        weight = torch.cat([self.to_k.weight, self.to_v.weight])  # [k | v], cut into heads of two
        keys, values = F.linear(context, weight).unflatten(-1, (self.heads, 2, self.head_width)).unbind(-2)
        if self.qk_norm:
            keys = self.norm_k(keys)
        return keys.transpose(1, 2), values.transpose(1, 2)

    def attend(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(N, T, heads, head width) queries against (N, heads, L, head width) keys and values."""
        if self.qk_norm:
            queries = self.norm_q(queries)
        out = F.scaled_dot_product_attention(queries.transpose(1, 2), keys, values)
        return self.to_out[0](out.transpose(1, 2).flatten(2))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if context is not None:
            queries = self.to_q(x).unflatten(-1, (self.heads, self.head_width))
            return self.attend(queries, *self.project_context(context))
        weight = torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])  # [q | k | v], heads of three
        queries, keys, values = F.linear(x, weight).unflatten(-1, (self.heads, 3, self.head_width)).unbind(-2)
        if self.qk_norm:
            keys = self.norm_k(keys)
        return self.attend(queries, keys.transpose(1, 2), values.transpose(1, 2))


class FeedForward(nn.Module):
    """``net.0.proj`` in, exact GELU, ``net.2`` out (``net.1`` held a dropout in training)."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(hidden, width)])
        self.net[0].proj = nn.Linear(width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](F.gelu(self.net[0].proj(x)))
