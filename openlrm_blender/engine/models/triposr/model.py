"""TripoSR: image -> triplanes. Learned triplane tokens attend to the image's DINO tokens;
the result is upsampled into three feature planes that the decoder queries at points."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .config import TripoSRConfig
from .image_encoder import ImageTokenizer
from .transformer import TriplaneTransformer
from .triplane import TripoSRDecoder


class TriplaneTokens(nn.Module):
    """The learned tokens (3, C, p, p), handed out as (N, C, 3*p*p) in plane, row, column order."""

    def __init__(self, config: TripoSRConfig) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(3, config.num_channels, config.plane_size, config.plane_size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.embeddings.permute(1, 0, 2, 3).flatten(1)[None].expand(batch, -1, -1)


class Upsampler(nn.Module):
    def __init__(self, config: TripoSRConfig) -> None:
        super().__init__()
        self.upsample = nn.ConvTranspose2d(config.num_channels, config.triplane_dim, kernel_size=2, stride=2)

    def forward(self, tokens: torch.Tensor, plane_size: int) -> torch.Tensor:
        """(N, C, 3*p*p) -> planes (N, 3, C', 2p, 2p)."""
        batch, channels, _ = tokens.shape
        planes = tokens.view(batch, channels, 3, plane_size, plane_size).transpose(1, 2).flatten(0, 1)
        planes = self.upsample(planes)
        return planes.view(batch, 3, *planes.shape[1:])


class TripoSR(nn.Module):
    def __init__(self, config: TripoSRConfig) -> None:
        super().__init__()
        self.config = config
        self.image_tokenizer = ImageTokenizer(config.vit)
        self.tokenizer = TriplaneTokens(config)
        self.backbone = TriplaneTransformer(config)
        self.post_processor = Upsampler(config)
        self.decoder = TripoSRDecoder(config)

    def forward(self, images: torch.Tensor, after_layer: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """Images (N, 3, S, S) in [0, 1] -> planes (N, 3, C', 2p, 2p)."""
        image_tokens = self.image_tokenizer(images).transpose(1, 2)  # N, L, width
        tokens = self.backbone(self.tokenizer(len(images)), image_tokens, after_layer=after_layer)
        return self.post_processor(tokens, self.config.plane_size)


def to_output_frame(vertices: np.ndarray) -> np.ndarray:
    """TripoSR's frame (x back, y right, z up; the input view looks from +x) turned into
    ours (+Z up, the input view looking from -Y): (x, y, z) -> (y, -x, z)."""
    return np.stack([vertices[:, 1], -vertices[:, 0], vertices[:, 2]], axis=1)
