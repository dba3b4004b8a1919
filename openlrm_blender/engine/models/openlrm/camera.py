"""The source camera OpenLRM is conditioned on, and its embedder."""

from __future__ import annotations

import torch
from torch import nn

# Normalised intrinsics of the published source camera: fx, fy, cx, cy.
SOURCE_INTRINSICS = (0.75, 0.75, 0.5, 0.5)


def source_camera(distance: float = 2.0, batch: int = 1) -> torch.Tensor:
    """16-vector: camera-to-world 3x4 (row major) + intrinsics; the camera sits at (0, -d, 0).

    It looks toward +Y with +Z up (OpenGL style), which is Blender's front view.
    """
    extrinsics = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, -1.0, -distance],
        [0.0, 1.0, 0.0, 0.0],
    ]
    vector = torch.tensor([value for row in extrinsics for value in row] + list(SOURCE_INTRINSICS))
    return vector.unsqueeze(0).expand(batch, -1)


class CameraEmbedder(nn.Module):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(16, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        return self.mlp(camera)
