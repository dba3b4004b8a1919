"""Camera-modulated transformer that turns image tokens into triplane tokens.

Parameter names follow the published state dict (``transformer.layers.0.norm1.mlp.1.weight``,
``transformer.layers.0.cross_attn.in_proj_weight`` ...).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadAttention(nn.Module):
    """Bias-free multi-head attention stored in ``torch.nn.MultiheadAttention``'s layout.

    That layout packs the three input projections into one ``in_proj_weight`` when the
    keys have the queries' width, and keeps ``q/k/v_proj_weight`` apart otherwise; the
    published cross-attention uses either, depending on the model size.
    """

    def __init__(self, width: int, heads: int, context_width: int | None = None) -> None:
        super().__init__()
        context_width = context_width or width
        self.heads = heads
        self.packed = context_width == width
        if self.packed:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(width, width))
            self.k_proj_weight = nn.Parameter(torch.empty(width, context_width))
            self.v_proj_weight = nn.Parameter(torch.empty(width, context_width))
        self.out_proj = nn.Linear(width, width, bias=False)

    def _project(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        if self.packed and context is None:
            return F.linear(x, self.in_proj_weight).chunk(3, dim=-1)
        if self.packed:
            w_q, w_kv = self.in_proj_weight.split([x.shape[-1], 2 * x.shape[-1]])
            return (F.linear(x, w_q), *F.linear(context, w_kv).chunk(2, dim=-1))
        context = x if context is None else context
        return (
            F.linear(x, self.q_proj_weight),
            F.linear(context, self.k_proj_weight),
            F.linear(context, self.v_proj_weight),
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention when ``context`` is None, else attention from ``x`` to ``context``."""
        batch, tokens, width = x.shape
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in self._project(x, context))
        x = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(x.transpose(1, 2).reshape(batch, tokens, width))


class ModLN(nn.Module):
    """LayerNorm whose output is shifted and scaled by the camera embedding."""

    def __init__(self, width: int, condition_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(condition_dim, 2 * width))

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        shift, scale = self.mlp(condition).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift


class ConditionedBlock(nn.Module):
    """Cross-attention to the image, self-attention, MLP; each behind a ModLN."""

    def __init__(self, width: int, heads: int, image_width: int, condition_dim: int) -> None:
        super().__init__()
        self.norm1 = ModLN(width, condition_dim)
        self.cross_attn = MultiHeadAttention(width, heads, context_width=image_width)
        self.norm2 = ModLN(width, condition_dim)
        self.self_attn = MultiHeadAttention(width, heads)
        self.norm3 = ModLN(width, condition_dim)
        # Index 2 held dropout in training; the published keys are mlp.0 and mlp.3.
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Identity(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, image_tokens: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        x = x + self.cross_attn(self.norm1(x, condition), image_tokens)
        x = x + self.self_attn(self.norm2(x, condition))
        return x + self.mlp(self.norm3(x, condition))


class TriplaneTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, image_width: int, condition_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ConditionedBlock(width, heads, image_width, condition_dim) for _ in range(layers))
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(
        self,
        x: torch.Tensor,
        image_tokens: torch.Tensor,
        condition: torch.Tensor,
        after_layer: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """``after_layer(done, total)`` runs between layers: progress and cancellation hook."""
        for index, layer in enumerate(self.layers):
            x = layer(x, image_tokens, condition)
            if after_layer is not None:
                after_layer(index + 1, len(self.layers))
        return self.norm(x)
