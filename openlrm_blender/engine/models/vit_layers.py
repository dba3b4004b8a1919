"""Layers of the ViT image encoders more than one family uses, under the published state dicts'
names: transformers' attention (``attention.attention.query``, ``attention.output.dense``) of
ViTModel (TripoSR's DINO) and Dinov2Model (TripoSG's), and the GELU MLP (``fc1``, ``fc2``) of
DINOv2 in both its layouts (OpenLRM's and TripoSG's), so every family's weights load unchanged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dense(nn.Module):
    """One linear layer under the published name ``dense``."""

    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, width_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention, query, key and value with biases, scaled by 1/sqrt(head width)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = (
            proj(x).view(batch, tokens, self.heads, -1).transpose(1, 2) for proj in (self.query, self.key, self.value)
        )
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, tokens, width)


class Attention(nn.Module):
    """Self-attention and its output projection (``attention.attention``, ``attention.output``)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention = SelfAttention(width, heads)
        self.output = Dense(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.attention(x))


class Mlp(nn.Module):
    """``fc1``, exact GELU, ``fc2``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))
