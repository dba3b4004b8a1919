"""TripoSG's shape decoder: latent tokens -> a logit at any point of space, positive inside.

The latents are projected (``post_quant``) and refined by self-attention blocks once per
shape (``latent_tokens``); then a point's frequency features are projected to a query that
attends to those tokens once, through a GELU feed-forward, a LayerNorm and a projection to
one number, negated (``logits``). Only the decoder runs at inference: the autoencoder's
encoder and ``quant`` are in the weights file and are not built (``UNUSED_PREFIXES``).
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import Attention, FeedForward
from .config import VAEConfig

UNUSED_PREFIXES = ("encoder.", "quant.")  # the weights file's tensors this engine never runs


def frequency_features(points: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(..., 3) -> (..., 3 + 6 frequencies): x, y, z; sin(c 2^k) for c = x (k = 0..), then y,
    then z; the cosines in the same order (no pi)."""
    scales = 2.0 ** torch.arange(frequencies, dtype=points.dtype, device=points.device)
    angles = (points[..., None] * scales).flatten(-2)
    return torch.cat([points, torch.sin(angles), torch.cos(angles)], dim=-1)


class SelfBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn1 = Attention(width, heads)
        self.norm3 = nn.LayerNorm(width)
        self.ff = FeedForward(width, 4 * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        return x + self.ff(self.norm3(x))


class QueryBlock(nn.Module):
    """Points' queries attend to the latent tokens (normed by ``attn2.norm_cross``)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm2 = nn.LayerNorm(width)
        self.attn2 = Attention(width, heads, context_norm=True)
        self.norm3 = nn.LayerNorm(width)
        self.ff = FeedForward(width, 4 * width)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        attention = self.attn2
        q = attention.to_q(self.norm2(queries)).unflatten(-1, (attention.heads, attention.head_width))
        x = queries + attention.attend(q, keys, values)
        return x + self.ff(self.norm3(x))


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        width, heads = config.width_decoder, config.num_attention_heads
        blocks: list[nn.Module] = [SelfBlock(width, heads) for _ in range(config.num_layers_decoder)]
        self.blocks = nn.ModuleList([*blocks, QueryBlock(width, heads)])
        self.proj_query = nn.Linear(3 + 6 * config.embed_frequency, width)
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, 1)


class ShapeDecoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.post_quant = nn.Linear(config.latent_channels, config.width_decoder)
        self.decoder = Decoder(config)
        self.frequencies = config.embed_frequency

    def latent_tokens(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values every point's query attends to, computed once per shape:
        (N, heads, T, head width) each."""
        tokens = self.post_quant(latents)
        *refine, query_block = self.decoder.blocks
        for block in refine:
            tokens = block(tokens)
        return query_block.attn2.project_context(tokens)

    def logits(self, points: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(N, M, 3) points -> (N, M) logits, positive inside the shape."""
        decoder = self.decoder
        queries = decoder.proj_query(frequency_features(points.to(keys.dtype), self.frequencies))
        x = decoder.blocks[-1](queries, keys, values)
        return -decoder.proj_out(decoder.norm_out(x))[..., 0]


def unused_layout(config: VAEConfig) -> dict[str, torch.Tensor]:
    """The weights file's tensors inference never runs (the autoencoder's encoder: a block of
    points attending to the surface samples, then self-attention blocks; and ``quant``), made
    on the meta device: their names and shapes, to check the file against."""
    width, heads = config.width_encoder, config.num_attention_heads
    with torch.device("meta"):
        encoder = nn.Module()
        encoder.proj_in = nn.Linear(config.in_channels + 3 + 6 * config.embed_frequency, width)
        encoder.blocks = nn.ModuleList(
            [QueryBlock(width, heads), *(SelfBlock(width, heads) for _ in range(config.num_layers_encoder))]
        )
        encoder.norm_out = nn.LayerNorm(width)
        quant = nn.Linear(width, 2 * config.latent_channels)
    layout = {f"encoder.{key}": value for key, value in encoder.state_dict().items()}
    return layout | {f"quant.{key}": value for key, value in quant.state_dict().items()}
