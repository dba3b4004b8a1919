"""How much arithmetic a TRELLIS run is, from its configuration's numbers (no PyTorch): the
time left while sampling, the sidebar's estimate before a run and the benchmark's floor.
Only matrix products, convolutions and attention count, attention apart
(``arithmetic.Flop``).

Stage 2's work depends on the object: its voxels, their neighbours (a sparse convolution
touches only the neighbours present) and the tokens left after halving them. Before stage 1
has run, a typical object stands in (``TYPICAL_*``: measured on the published model's
objects, see docs/models.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ..arithmetic import Flop
from .config import FlowConfig, LatentDecoderConfig, SamplerConfig

IMAGE_TOKENS = 1374  # DINOv2's class token, 4 registers and 37 x 37 patches at 518 px
ENCODER = (1024, 24, 4, 14)  # DINOv2-L/14's width, layers, MLP ratio and patch side
# A typical object at the real latent resolution of 64: occupied voxels, the neighbours a
# voxel has of its 27 (itself included), and voxels per token once halved.
TYPICAL_VOXELS = 20_000
TYPICAL_NEIGHBOURS = 9.0
TYPICAL_VOXELS_PER_TOKEN = 3.5
# The neighbours a voxel has once the mesh decoder has made each voxel eight, then each of
# those eight (its own 2x2x2 block and parts of its neighbours'): 17.1 and 21.7 on the
# benchmark's object (benchmarks/trellis_object.py), whose voxels have 9.5.
TYPICAL_CHILD_NEIGHBOURS = (17.1, 21.7)


@dataclass(frozen=True)
class Voxels:
    """What stage 2's cost depends on."""

    count: int
    neighbour_pairs: int  # (voxel, neighbour) pairs over the 27 offsets, at full resolution
    tokens: int  # after the res-blocks halved them
    token_pairs: int  # the same at the tokens' resolution

    @classmethod
    def typical(cls, count: int = TYPICAL_VOXELS) -> Voxels:
        tokens = round(count / TYPICAL_VOXELS_PER_TOKEN)
        return cls(count, round(count * TYPICAL_NEIGHBOURS), tokens, round(tokens * TYPICAL_NEIGHBOURS))


def _transformer_block(tokens: int, width: int, context: int, context_width: int, mlp_ratio: float) -> Flop:
    """One modulated cross block: self-attention, cross-attention to the image, feed-forward."""
    products = (
        2 * tokens * width * 3 * width + 2 * tokens * width * width  # self-attention's [q | k | v] and output
        + 2 * tokens * width * width  # cross-attention's queries
        + 2 * context * context_width * 2 * width  # the image's keys and values
        + 2 * tokens * width * width  # its output
        + 2 * 2 * tokens * width * mlp_ratio * width  # the feed-forward
    )  # fmt: skip
    attention = 2 * 2 * tokens * tokens * width + 2 * 2 * tokens * context * width  # scores and weighted values
    return Flop(products, attention)


def structure_call_flop(config: FlowConfig) -> Flop:
    """One call of the structure flow: a dense DiT over (res / patch)^3 tokens."""
    tokens = (config.resolution // config.patch_size) ** 3
    width = config.model_channels
    block = _transformer_block(tokens, width, IMAGE_TOKENS, config.cond_channels, config.mlp_ratio)
    io = 2 * tokens * config.in_channels * config.patch_size**3 * width * 2
    return config.num_blocks * block + Flop(io)


def latent_call_flop(config: FlowConfig, voxels: Voxels) -> Flop:
    """One call of the latent flow on an object's voxels: the res-blocks' sparse convolutions
    at both resolutions, and the DiT over its tokens."""
    width, widths = config.model_channels, list(config.io_block_channels)
    convolutions = 0.0
    if widths:
        fine, coarse = widths[0], width
        # In: a block at the voxels' resolution, then one that halves them and widens to the DiT's.
        convolutions += 2 * 2 * voxels.neighbour_pairs * fine * fine
        convolutions += 2 * voxels.token_pairs * fine * coarse + 2 * voxels.token_pairs * coarse * coarse
        # Out: one that doubles back from the skip-joined tokens, one more at the voxels' resolution.
        convolutions += 2 * voxels.neighbour_pairs * 2 * coarse * fine + 2 * voxels.neighbour_pairs * fine * fine
        convolutions += 2 * voxels.neighbour_pairs * 2 * fine * fine + 2 * voxels.neighbour_pairs * fine * fine
    block = _transformer_block(voxels.tokens, width, IMAGE_TOKENS, config.cond_channels, config.mlp_ratio)
    return config.num_blocks * block + Flop(convolutions)


def calls(sampler: SamplerConfig, steps: int, guidance: float, views: int = 1, mode: str = "stochastic") -> list[int]:
    """Model calls in each step: two inside the guidance interval (one without guidance),
    every photo's in each call in "multidiffusion" mode."""
    conditional = views if mode == "multidiffusion" else 1
    return [conditional + sampler.guided(t, guidance) for t in sampler.times(steps)[:-1]]


def encoder_flop(width: int = ENCODER[0], layers: int = ENCODER[1], mlp_ratio: int = ENCODER[2]) -> Flop:
    """The photo's tokens: the patches' projection, then the ViT's layers over them."""
    patches, patch = IMAGE_TOKENS - 5, ENCODER[3]
    products = 2 * IMAGE_TOKENS * width * 4 * width + 2 * 2 * IMAGE_TOKENS * width * mlp_ratio * width
    layer = Flop(products, 2 * 2 * IMAGE_TOKENS**2 * width)
    return Flop(2 * patches * 3 * patch**2 * width) + layers * layer


def _decoder_torso(config: LatentDecoderConfig, voxels: int, out_channels: int) -> float:
    """A latent decoder's transformer over the voxels (its window attention, a few percent
    of it, left out) and its output layer."""
    width = config.model_channels
    block = 2 * voxels * width * 4 * width + 2 * 2 * voxels * width * config.mlp_ratio * width
    return config.num_blocks * block + 2 * voxels * width * out_channels


def decoders_flop(
    gaussian: LatentDecoderConfig, mesh: LatentDecoderConfig | None, voxels: Voxels,
    child_neighbours: tuple[float, float] = TYPICAL_CHILD_NEIGHBOURS,
) -> Flop:  # fmt: skip
    """After sampling: the Gaussian decoder, and (unless painting a given mesh) the mesh
    decoder with its two subdivisions (each voxel eight, then each of those eight, through
    sparse convolutions where each has ``child_neighbours``): products all."""
    per_gaussian = 3 + 3 + 3 + 4 + 1  # offset, colour, scale, rotation, opacity
    gaussians = gaussian.representation_config.get("num_gaussians", 32) * per_gaussian
    total = _decoder_torso(gaussian, voxels.count, gaussians)
    if mesh is None:
        return Flop(total)
    total += _decoder_torso(mesh, voxels.count, 0)
    width, rows = mesh.model_channels, voxels.count
    levels = ((width, width // 4), (width // 4, width // 8))  # the two subdivisions' widths in and out
    for (channels, out), neighbours in zip(levels, child_neighbours, strict=True):
        rows *= 8
        total += 2 * rows * neighbours * (channels * out + out * out) + 2 * rows * channels * out
    colour = mesh.representation_config.get("use_color", False)
    features = 8 + 8 * 3 + (8 * 6 if colour else 0) + 21  # per cube: distances, deformations, colours, weights
    return Flop(total + 2 * rows * (width // 8) * features)
