"""What a run tells a model's encoder besides the image: one set of settings for every family,
each taking what it uses (OpenLRM its source camera's distance, TripoSG its sampling)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Encoding:
    camera_distance: float = 2.0  # OpenLRM's source camera; the photo texture's for the others
    steps: int = 50  # a flow model's sampling: steps, guidance scale, the noise's seed, latent tokens
    guidance: float = 7.0
    seed: int = 42
    tokens: int = 2048
