"""The transformer layers every TRELLIS network is made of, under the published state dicts'
names (``to_qkv``, ``q_rms_norm.gamma``, ``adaLN_modulation.1``, ``mlp.mlp.0`` ...).

Every network here runs on one object, so a sparse tensor's rows are a sequence like any
other: a layer takes (B, L, C) tokens, a dense grid's patches or an object's voxels alike.
Attention is over the whole sequence, or within windows of voxels (``sparse.Windows``: the
decoders' shifted-window attention). Layer norms compute in float32 whatever the torso's
precision, as published (a float16 torso on a GPU)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import FlowConfig
from .sparse import Windows

FREQUENCY_CHANNELS = 256  # the timestep's sinusoidal features
MAX_PERIOD = 10_000


class LayerNorm32(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class TimestepEmbedder(nn.Module):
    """The flow's time (0..1000) as sinusoids (cosines first), then a SiLU MLP."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQUENCY_CHANNELS, channels), nn.SiLU(), nn.Linear(channels, channels))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = FREQUENCY_CHANNELS // 2
        frequencies = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32) / half)
        angles = t[:, None].float() * frequencies.to(t.device)[None]
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))


def position_embedding(coords: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, 3) integer positions -> (N, channels): per axis the sines then the cosines of
    ``channels // 6`` frequencies, zero-padded to ``channels`` (the published absolute one)."""
    count = channels // 3 // 2
    frequencies = 1.0 / (MAX_PERIOD ** (torch.arange(count, dtype=torch.float32, device=coords.device) / count))
    angles = torch.outer(coords.reshape(-1).float(), frequencies)
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(len(coords), -1)
    return F.pad(embedding, (0, channels - embedding.shape[1]))


class MultiHeadRMSNorm(nn.Module):
    """Queries or keys (B, L, H, D) scaled to length sqrt(D), then by a learnt gain per head and channel."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(heads, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.normalize(x.float(), dim=-1) * self.gamma * self.scale).to(x.dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, L, H, D) queries against (B, S, H, D) keys and values -> (B, L, H, D)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int, qk_rms_norm: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(channels, channels * 3)
        if qk_rms_norm:
            self.q_rms_norm = MultiHeadRMSNorm(channels // heads, heads)
            self.k_rms_norm = MultiHeadRMSNorm(channels // heads, heads)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, windows: Windows | None = None) -> torch.Tensor:
        batch, length, channels = x.shape
        q, k, v = self.to_qkv(x).reshape(batch, length, 3, self.heads, -1).unbind(dim=2)
        if hasattr(self, "q_rms_norm"):
            q, k = self.q_rms_norm(q), self.k_rms_norm(k)
        h = attention(q, k, v) if windows is None else windows.attend(q[0], k[0], v[0])[None]
        return self.to_out(h.reshape(batch, length, channels))


class CrossAttention(nn.Module):
    def __init__(self, channels: int, context_channels: int, heads: int, qk_rms_norm: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(channels, channels)
        self.to_kv = nn.Linear(context_channels, channels * 2)
        if qk_rms_norm:
            self.q_rms_norm = MultiHeadRMSNorm(channels // heads, heads)
            self.k_rms_norm = MultiHeadRMSNorm(channels // heads, heads)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        batch, length, channels = x.shape
        q = self.to_q(x).reshape(batch, length, self.heads, -1)
        k, v = self.to_kv(context).reshape(batch, context.shape[1], 2, self.heads, -1).unbind(dim=2)
        if hasattr(self, "q_rms_norm"):
            q, k = self.q_rms_norm(q), self.k_rms_norm(k)
        return self.to_out(attention(q, k, v).reshape(batch, length, channels))


class FeedForward(nn.Module):
    def __init__(self, channels: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class TransformerBlock(nn.Module):
    """Pre-norm self-attention and feed-forward (the latent decoders' torso)."""

    def __init__(self, channels: int, heads: int, mlp_ratio: float, qk_rms_norm: bool = False) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(channels, heads, qk_rms_norm)
        self.norm2 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6)
        self.mlp = FeedForward(channels, mlp_ratio)

    def forward(self, x: torch.Tensor, windows: Windows | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), windows)
        return x + self.mlp(self.norm2(x))


class ModulatedCrossBlock(nn.Module):
    """The flows' block: self-attention and feed-forward shifted, scaled and gated by the
    time (adaLN), and cross-attention to the image's tokens between them."""

    def __init__(
        self,
        channels: int,
        context_channels: int,
        heads: int,
        mlp_ratio: float,
        qk_rms_norm: bool = False,
        qk_rms_norm_cross: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6)
        self.norm2 = LayerNorm32(channels, elementwise_affine=True, eps=1e-6)
        self.norm3 = LayerNorm32(channels, elementwise_affine=False, eps=1e-6)
        self.self_attn = SelfAttention(channels, heads, qk_rms_norm)
        self.cross_attn = CrossAttention(channels, context_channels, heads, qk_rms_norm_cross)
        self.mlp = FeedForward(channels, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(channels, 6 * channels))

    def forward(self, x: torch.Tensor, time: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        shift_attention, scale_attention, gate_attention, shift_mlp, scale_mlp, gate_mlp = (
            part[:, None] for part in self.adaLN_modulation(time).chunk(6, dim=1)
        )
        h = self.norm1(x) * (1 + scale_attention) + shift_attention
        x = x + self.self_attn(h) * gate_attention
        x = x + self.cross_attn(self.norm2(x), context)
        h = self.norm3(x) * (1 + scale_mlp) + shift_mlp
        return x + self.mlp(h) * gate_mlp


def modulated_blocks(config: FlowConfig) -> nn.ModuleList:
    """A flow's DiT torso: ``num_blocks`` modulated cross blocks at its width."""
    return nn.ModuleList(
        ModulatedCrossBlock(
            config.model_channels, config.cond_channels, config.heads, config.mlp_ratio, config.qk_rms_norm,
            config.qk_rms_norm_cross,
        )
        for _ in range(config.num_blocks)
    )  # fmt: skip
