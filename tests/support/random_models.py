"""Randomly initialised models in the published file layout, for tests and benchmarks.

The real weights cannot be downloaded everywhere (CI has no Hub access); a random model
with the real key layout exercises the same loading, shapes and code paths.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from openlrm_blender.engine.models.openlrm.config import ModelConfig
from openlrm_blender.engine.models.openlrm.model import OpenLRM
from openlrm_blender.engine.models.openlrm.transformer import MultiHeadAttention
from openlrm_blender.engine.models.openlrm.weights import CONFIG_FILE, WEIGHTS_FILE, published_state

# config.json of the published models, as the spec lists them.
PUBLISHED_CONFIGS: dict[str, dict] = {
    size: {
        "camera_embed_dim": 1024,
        "rendering_samples_per_ray": samples,
        "transformer_dim": width,
        "transformer_layers": layers,
        "transformer_heads": heads,
        "triplane_low_res": 32,
        "triplane_high_res": 64,
        "triplane_dim": triplane_dim,
        "encoder_type": "dinov2",
        "encoder_model_name": encoder,
        "encoder_feat_dim": encoder_width,
        "encoder_freeze": False,
    }
    for size, samples, width, layers, heads, triplane_dim, encoder, encoder_width in (
        ("small", 96, 512, 12, 8, 32, "dinov2_vits14_reg", 384),
        ("base", 96, 768, 12, 12, 48, "dinov2_vitb14_reg", 768),
        ("large", 128, 1024, 16, 16, 80, "dinov2_vitb14_reg", 768),
    )
}


@torch.no_grad()
def random_model(config: ModelConfig, seed: int = 0, density_shift: float = 3.5) -> OpenLRM:
    """A model with PyTorch's default initialisation where it has one, small normal
    values for the raw tables, and the density output's bias raised by ``density_shift``
    so that the density crosses the published threshold somewhere."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = OpenLRM(config)
        for module in model.modules():
            if isinstance(module, MultiHeadAttention):
                for parameter in module.parameters(recurse=False):
                    nn.init.xavier_uniform_(parameter)
        dino = model.encoder.model
        for table in (dino.cls_token, dino.pos_embed, dino.register_tokens):
            nn.init.normal_(table, std=0.02)
        nn.init.normal_(model.pos_embed, std=config.transformer_dim**-0.5)
        for block in dino.blocks:
            nn.init.constant_(block.ls1.gamma, 0.1)
            nn.init.constant_(block.ls2.gamma, 0.1)
        # Unit-scale planes and variance-keeping decoder layers give a density that
        # varies over the volume as a trained model's does, not a near-constant.
        nn.init.normal_(model.upsampler.weight, std=config.transformer_dim**-0.5)
        for layer in model.decoder.mlp.net:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        model.decoder.mlp.net[-1].bias[0] += density_shift
    finally:
        torch.random.set_rng_state(generator_state)
    return model.eval()


# The object_model's planes hold a bump exp(-(u^2 + v^2) / BUMP_WIDTH) on each plane;
# the sum of the three is above OBJECT_LEVEL on a rounded body of about 10% of the volume.
BUMP_WIDTH = 0.66
OBJECT_LEVEL = 1.585
POSITION_SCALE = 0.4  # how strongly the planes also hold their (u, v): colours follow it


@torch.no_grad()
def object_model(config: ModelConfig, seed: int = 0) -> OpenLRM:
    """A random model whose density is one compact, smooth object, as a trained model's is.

    A random model's density is noise throughout the volume; mesh extraction, whose
    cost follows the surface, needs an object to be measured fairly. Every weight keeps
    its random value and cost except these: the transformer's residual branches are
    damped so the output tokens are the position table; the table holds a bump on each
    plane, plus the plane's coordinates; the upsampler turns the bump into plane channel
    0; and the decoder's density output follows the sum of the three channel-0 values.
    Colours come from the random decoder, so they vary over the surface.
    """
    model = random_model(config, seed=seed)
    width, res = config.transformer_dim, config.triplane_low_res
    for block in model.transformer.layers:
        for branch in (block.cross_attn.out_proj, block.self_attn.out_proj, block.mlp[-1]):
            branch.weight.mul_(0.01)
            if branch.bias is not None:
                branch.bias.zero_()
    # Orthogonal zero-mean directions, so the final LayerNorm keeps their mix.
    generator = torch.Generator().manual_seed(seed)
    basis = torch.randn(width, 4, generator=generator)
    basis -= basis.mean(dim=0)
    basis = torch.linalg.qr(basis).Q.T * width**0.5  # 4, width
    centres = (torch.arange(res) + 0.5) * 2.0 / res - 1.0
    rows, cols = torch.meshgrid(centres, centres, indexing="ij")
    bump = torch.exp(-(rows**2 + cols**2) / BUMP_WIDTH).reshape(-1, 1)
    position = cols.reshape(-1, 1) * basis[2] + rows.reshape(-1, 1) * basis[3]
    table = bump * basis[0] + (1.0 - bump) * basis[1] + POSITION_SCALE * position  # res*res, width
    model.pos_embed.copy_(table.repeat(3, 1)[None])
    # Plane channel 0 = (2 b - 1) / |(b, 1 - b, POSITION_SCALE u, POSITION_SCALE v)|: rises with b.
    model.upsampler.weight[:, 0] = ((basis[0] - basis[1]) / width)[:, None, None]
    model.upsampler.bias[0] = 0.0
    # Hidden unit 0 carries s = the sum of the three channel-0 values through the MLP.
    net = model.decoder.mlp.net
    channels = config.triplane_dim
    first = net[0]
    first.weight[0] = 0.0
    first.weight[0, 0::channels] = 1.0
    first.bias[0] = 0.0
    for layer in (net[2], net[4], net[6]):
        layer.weight[0] = 0.0
        layer.weight[0, 0] = 1.0
        layer.bias[0] = 0.0
    net[6].weight[1:] *= 4.0  # colours that vary visibly over the surface
    # Inside (density 3) where raw - 1 > log(e^3 - 1), i.e. where s > OBJECT_LEVEL.
    net[6].bias[0] = 1.0 + math.log(math.expm1(3.0)) - OBJECT_LEVEL
    return model


def save_model(model: OpenLRM, folder: Path, raw_config: dict) -> Path:
    """Write ``config.json`` and ``model.safetensors`` the way a Hub repo holds them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(raw_config, indent=2), encoding="utf-8")
    state = {key: value.contiguous() for key, value in published_state(model).items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    return folder


def save_random_model(folder: Path, raw_config: dict, seed: int = 0, density_shift: float = 3.5) -> Path:
    model = random_model(ModelConfig.from_dict(raw_config), seed=seed, density_shift=density_shift)
    return save_model(model, folder, raw_config)
