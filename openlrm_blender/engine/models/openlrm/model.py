"""OpenLRM v1.1: image + source camera -> triplanes."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .camera import CameraEmbedder
from .config import ModelConfig
from .encoder import ImageEncoder
from .transformer import TriplaneTransformer
from .triplane import OpenLRMDecoder


class OpenLRM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width, res = config.transformer_dim, config.triplane_low_res
        self.encoder = ImageEncoder(config.encoder_feat_dim, config.encoder_depth, config.encoder_num_heads)
        self.camera_embedder = CameraEmbedder(config.camera_embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3 * res * res, width))
        self.transformer = TriplaneTransformer(
            width,
            config.transformer_layers,
            config.transformer_heads,
            image_width=config.encoder_feat_dim,
            condition_dim=config.camera_embed_dim,
        )
        self.upsampler = nn.ConvTranspose2d(width, config.triplane_dim, kernel_size=2, stride=2)
        self.decoder = OpenLRMDecoder(config.triplane_dim)

    def to_planes(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, 3*r*r, D) tokens -> (N, 3, C, 2r, 2r) planes; plane, row, column order."""
        batch, _, width = tokens.shape
        res = self.config.triplane_low_res
        tokens = tokens.view(batch, 3, res, res, width).permute(0, 1, 4, 2, 3).reshape(batch * 3, width, res, res)
        planes = self.upsampler(tokens)
        return planes.view(batch, 3, *planes.shape[1:])

    def forward(
        self,
        images: torch.Tensor,
        cameras: torch.Tensor,
        after_layer: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Images (N, 3, S, S) in [0, 1] and cameras (N, 16) -> planes (N, 3, C, 2r, 2r)."""
        image_tokens = self.encoder(images)
        condition = self.camera_embedder(cameras)
        tokens = self.pos_embed.expand(images.shape[0], -1, -1)
        tokens = self.transformer(tokens, image_tokens, condition, after_layer=after_layer)
        return self.to_planes(tokens)
