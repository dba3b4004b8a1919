"""DINO ViT-B/16 as transformers' ViTModel (4.35) computes it: TripoSR's image encoder.

Module and parameter names follow the published state dict
(``image_tokenizer.model.encoder.layer.0.attention.attention.query.weight`` ...), so
weights load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..vit_layers import Attention, Dense
from .config import ViTConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PatchEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(images).flatten(2).transpose(1, 2)


class Embeddings(nn.Module):
    """Class token and patches, with the position table resized to the image's patch grid."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, (config.image_size // config.patch_size) ** 2 + 1, config.hidden_size)
        )
        self.patch_embeddings = PatchEmbeddings(config)
        self.patch_size = config.patch_size

    def positions(self, grid: int) -> torch.Tensor:
        """The stored n x n table resized to grid x grid the way DINO did: bicubic, no
        antialias, with a scale factor of (grid + 0.1) / n (its legacy offset)."""
        table = self.position_embeddings
        stored = math.isqrt(table.shape[1] - 1)
        if grid == stored:
            return table
        width = table.shape[-1]
        patches = table[:, 1:].reshape(1, stored, stored, width).permute(0, 3, 1, 2)
        scale = (grid + 0.1) / stored
        patches = F.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", align_corners=False)
        return torch.cat([table[:, :1], patches.permute(0, 2, 3, 1).reshape(1, -1, width)], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embeddings(images)
        tokens = torch.cat([self.cls_token.expand(len(images), -1, -1), tokens], dim=1)
        return tokens + self.positions(images.shape[-1] // self.patch_size)


class Layer(nn.Module):
    """Pre-norm: x += attention(layernorm_before(x)); x += mlp(layernorm_after(x))."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.attention = Attention(config.hidden_size, config.num_attention_heads)
        self.intermediate = Dense(config.hidden_size, config.intermediate_size)
        self.output = Dense(config.intermediate_size, config.hidden_size)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class Encoder(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class ViT(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.pooler = Dense(config.hidden_size, config.hidden_size)  # in the weights, unused

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(images)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.layernorm(x)


class ImageTokenizer(nn.Module):
    """Images (N, 3, S, S) in [0, 1] -> tokens (N, width, 1 + (S/16)^2), class token first."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.model = ViT(config)
        # Not in the weights: made on the CPU even when the model is built on the meta device.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, device="cpu").view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD, device="cpu").view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std).transpose(1, 2)
