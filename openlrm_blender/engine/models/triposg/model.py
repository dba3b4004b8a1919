"""TripoSG: image -> latent tokens of a shape -> a logit at any point. Its three networks, one
per component folder of the published repository: the DINOv2 image encoder, the flow
transformer and the shape decoder."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..dinov2 import Dinov2
from .config import TripoSGConfig
from .transformer import FlowTransformer
from .vae import ShapeDecoder

# The networks, each under its component folder's name (its weights file's keys are its own).
NETWORKS = ("image_encoder_dinov2", "transformer", "vae")


class TripoSG(nn.Module):
    def __init__(self, config: TripoSGConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder_dinov2 = Dinov2(config.image_encoder)
        self.transformer = FlowTransformer(config.transformer)
        self.vae = ShapeDecoder(config.vae)

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (N, 3, 224, 224) -> the image's tokens (N, 257, width)."""
        parameter = next(self.image_encoder_dinov2.parameters())
        return self.image_encoder_dinov2(pixels.to(parameter.device, parameter.dtype))


def to_output_frame(vertices: np.ndarray) -> np.ndarray:
    """TripoSG's frame (+Y up, the input view from +Z) turned into ours (+Z up, the input view
    from -Y): (x, y, z) -> (x, -z, y), a quarter turn about X; the image's right stays +X."""
    return np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], axis=1)
