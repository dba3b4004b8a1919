"""DINOv2 as transformers computes it, in both of its Hugging Face layouts: ``Dinov2Model``
(TripoSG's image encoder, 4.45 to 4.48) and ``Dinov2WithRegistersModel`` (TRELLIS's: the
same network with register tokens, as ``facebook/dinov2-with-registers-large`` stores the
``dinov2_vitl14_reg`` of DINOv2's hub code).

Module and parameter names follow the published state dicts
(``embeddings.patch_embeddings.projection``, ``embeddings.register_tokens``,
``encoder.layer.0.layer_scale1.lambda1`` ...), so the weights load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dinov2_config import Dinov2Config
from .vit_layers import Attention, Mlp


class PatchEmbeddings(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, config.patch_size, stride=config.patch_size
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(images).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    """Class token and patches, with the position table resized to the image's patch grid; then
    the register tokens, if any, right after the class token, with no position of their own."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        stored = config.image_size // config.patch_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.mask_token = nn.Parameter(torch.zeros(1, config.hidden_size))  # in the weights, unused at inference
        if config.num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, stored * stored + 1, config.hidden_size))
        self.patch_embeddings = PatchEmbeddings(config)
        self.patch_size = config.patch_size
        self.num_register_tokens = config.num_register_tokens

    def positions(self, rows: int, columns: int) -> torch.Tensor:
        """The stored table as it is on its own grid (TRELLIS's 518 px: 37 x 37), else resized to
        the patch grid by its size: bicubic, no antialias, in float32 (the class token's row kept)."""
        table = self.position_embeddings
        stored = math.isqrt(table.shape[1] - 1)
        if (rows, columns) == (stored, stored):
            return table
        width = table.shape[-1]
        patches = table[:, 1:].reshape(1, stored, stored, width).permute(0, 3, 1, 2).float()
        patches = F.interpolate(patches, size=(rows, columns), mode="bicubic", align_corners=False, antialias=False)
        patches = patches.to(table.dtype).permute(0, 2, 3, 1).reshape(1, rows * columns, width)
        return torch.cat([table[:, :1], patches], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embeddings(images.to(self.cls_token.dtype))
        tokens = torch.cat([self.cls_token.expand(len(images), -1, -1), tokens], dim=1)
        tokens = tokens + self.positions(images.shape[-2] // self.patch_size, images.shape[-1] // self.patch_size)
        if not self.num_register_tokens:
            return tokens
        registers = self.register_tokens.expand(len(images), -1, -1)
        return torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)


class LayerScale(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.lambda1


class Layer(nn.Module):
    """Pre-norm, each branch scaled per channel: x += ls1 * attention(norm1(x)); x += ls2 * mlp(norm2(x))."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        width = config.hidden_size
        self.norm1 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.attention = Attention(width, config.num_attention_heads)
        self.layer_scale1 = LayerScale(width)
        self.norm2 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp = Mlp(width, width * config.mlp_ratio)
        self.layer_scale2 = LayerScale(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x)))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class Encoder(nn.Module):
    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class Dinov2(nn.Module):
    """Pixels (N, 3, S, S), normalised -> tokens (N, 1 + registers + (S/14)^2, width): the class
    token, the registers, the patches row by row."""

    def __init__(self, config: Dinov2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def prenorm_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last layer's tokens before the final norm (the hub code's ``x_prenorm``): TRELLIS
        normalises them itself, without the norm's weights."""
        x = self.embeddings(pixels)
        for layer in self.encoder.layer:
            x = layer(x)
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The last hidden state, after the final norm (transformers' ``last_hidden_state``)."""
        return self.layernorm(self.prenorm_tokens(pixels))
