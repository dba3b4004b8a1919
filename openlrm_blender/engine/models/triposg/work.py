"""How much arithmetic a TripoSG run is, from its configuration's numbers alone (no PyTorch):
the estimate of a run's time (``models.estimate``), and the benchmark's floor for a flow step.
Only matrix products and attention count, each apart (``arithmetic.Flop``)."""

from __future__ import annotations

from ..arithmetic import Flop
from .config import Dinov2Config, TransformerConfig, VAEConfig

IMAGE_TOKENS = 257  # DINOv2's class token and 16 x 16 patches of the 224 px crop
# Points the coarse-to-fine grid evaluates per square of the resolution, for a compact object
# (the benchmark's ellipsoid: 5.2 at 256, 4.8 at 512, counted on the tiny vector's widths).
QUERIES_PER_SQUARE = 5.2
# The published model's configurations, the defaults below.
PUBLISHED_TRANSFORMER = TransformerConfig()
PUBLISHED_VAE = VAEConfig()
PUBLISHED_ENCODER = Dinov2Config()


def step_flop(tokens: int, guidance: float, config: TransformerConfig = PUBLISHED_TRANSFORMER) -> Flop:
    """One flow step: the transformer over the latents and the time token, twice where
    guidance asks for the unconditional prediction too."""
    width, n = config.width, tokens + 1
    products = (
        2 * n * width * 3 * width  # self-attention's [q | k | v]
        + 2 * n * width * width * 2  # its output, and cross-attention's queries
        + 2 * IMAGE_TOKENS * config.cross_attention_dim * 2 * width  # the image tokens' [k | v]
        + 2 * n * width * width  # cross-attention's output
        + 2 * 2 * n * width * 4 * width  # the feed-forward
    )
    attention = 2 * 2 * n * n * width + 2 * 2 * n * IMAGE_TOKENS * width  # scores and weighted values
    skips = config.num_layers - config.num_layers // 2 - 1
    time = 2 * 2 * width * 4 * width  # the time token's MLP
    rest = skips * 2 * n * 2 * width * width + 2 * 2 * tokens * config.in_channels * width + time
    return Flop(config.num_layers * products + rest, config.num_layers * attention) * (2 if guidance > 1 else 1)


def query_flop(tokens: int, config: VAEConfig = PUBLISHED_VAE) -> Flop:
    """One point of the field: its query's projections, its attention over the latent tokens,
    the feed-forward."""
    width = config.width_decoder
    features = 3 + 6 * config.embed_frequency
    products = 2 * features * width + 2 * 2 * width * width + 2 * 2 * width * 4 * width + 2 * width
    return Flop(products, 2 * 2 * tokens * width)


def shape_flop(tokens: int, config: VAEConfig = PUBLISHED_VAE) -> Flop:
    """Once per shape: the decoder's self-attention blocks over the latent tokens, and the keys
    and values every point's query attends to."""
    width = config.width_decoder
    products = 2 * tokens * width * 4 * width + 2 * 2 * tokens * width * 4 * width
    keys_values = 2 * tokens * width * 2 * width
    blocks = Flop(products, 2 * 2 * tokens * tokens * width) * config.num_layers_decoder
    return blocks + Flop(2 * tokens * config.latent_channels * width + keys_values)


def encoder_flop(config: Dinov2Config = PUBLISHED_ENCODER) -> Flop:
    """The image's tokens: the patches' projection, then the ViT's layers."""
    width, patches = config.hidden_size, IMAGE_TOKENS - 1
    products = 2 * IMAGE_TOKENS * width * 4 * width + 2 * 2 * IMAGE_TOKENS * width * config.mlp_ratio * width
    layers = Flop(products, 2 * 2 * IMAGE_TOKENS**2 * width) * config.num_hidden_layers
    return Flop(2 * patches * config.num_channels * config.patch_size**2 * width) + layers


def run_flop(
    steps: int, guidance: float, tokens: int, resolution: int, transformer: TransformerConfig = PUBLISHED_TRANSFORMER,
    vae: VAEConfig = PUBLISHED_VAE, encoder: Dinov2Config = PUBLISHED_ENCODER,
) -> Flop:  # fmt: skip
    """A whole run (of the published model unless configurations are given), a compact
    object's grid at ``resolution``."""
    queries = QUERIES_PER_SQUARE * resolution**2
    return (
        encoder_flop(encoder) + steps * step_flop(tokens, guidance, transformer) + shape_flop(tokens, vae)
        + queries * query_flop(tokens, vae)
    )  # fmt: skip
