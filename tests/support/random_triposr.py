"""Random TripoSR models in the published file layout (config.yaml + weights), for tests
and benchmarks: the real weights (1.68 GB, on the Hub) cannot be fetched everywhere."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from openlrm_blender.engine.models.triposr.config import CONFIG_FILE, TripoSRConfig
from openlrm_blender.engine.models.triposr.model import TripoSR

# The published config.yaml's values (spec/triposr.md section 1), in its own words.
PUBLISHED_CONFIG = """\
cond_image_size: 512
image_tokenizer_cls: tsr.models.tokenizers.image.DINOSingleImageTokenizer
image_tokenizer:
  pretrained_model_name_or_path: facebook/dino-vitb16
tokenizer_cls: tsr.models.tokenizers.triplane.Triplane1DTokenizer
tokenizer:
  plane_size: 32
  num_channels: 1024
backbone_cls: tsr.models.transformer.transformer_1d.Transformer1D
backbone:
  in_channels: ${tokenizer.num_channels}
  num_attention_heads: 16
  attention_head_dim: 64
  num_layers: 16
  cross_attention_dim: 768
post_processor_cls: tsr.models.network_utils.TriplaneUpsampleNetwork
post_processor:
  in_channels: 1024
  out_channels: 40
decoder_cls: tsr.models.network_utils.NeRFMLP
decoder:
  in_channels: 120
  n_neurons: 64
  n_hidden_layers: 9
  activation: silu
renderer_cls: tsr.models.nerf_renderer.TriplaneNeRFRenderer
renderer:
  radius: 0.87
  feature_reduction: concat
  density_activation: exp
  density_bias: -1.0
  num_samples_per_ray: 128
"""

# As tests/support/random_models.py's object model: a bump on each plane, whose sum is
# above OBJECT_LEVEL on a rounded body of about a tenth of the volume.
BUMP_WIDTH = 0.66
OBJECT_LEVEL = 1.585
CARRY = 10.0  # hidden unit 0 carries the bumps' sum plus this, where SiLU is the identity to 1e-3
THRESHOLD = 25.0  # the published one


@torch.no_grad()
def object_model(config: TripoSRConfig, seed: int = 0) -> TripoSR:
    """A random TripoSR whose density is one compact object (at the published threshold 25),
    so that mesh extraction is measured on what a trained model gives: the transformer's
    output projection is zeroed, so the planes are the upsampled learned tokens; the tokens
    hold a bump in channel 0 of each plane; the decoder's density follows the three bumps'
    sum. Colours come from the random decoder."""
    torch.manual_seed(seed)
    model = TripoSR(config)
    model.backbone.proj_out.weight.zero_()
    model.backbone.proj_out.bias.zero_()  # tokens out = tokens in
    size = config.plane_size
    centres = (torch.arange(size) + 0.5) * 2.0 / size - 1.0
    rows, columns = torch.meshgrid(centres, centres, indexing="ij")
    embeddings = torch.randn(3, config.num_channels, size, size) * 0.1
    embeddings[:, 0] = torch.exp(-(rows**2 + columns**2) / BUMP_WIDTH)
    model.tokenizer.embeddings.copy_(embeddings)
    upsample = model.post_processor.upsample
    upsample.weight[:, 0] = 0.0
    upsample.weight[0, 0] = 1.0
    upsample.bias[0] = 0.0  # plane channel 0 = the bump
    net = model.decoder.layers
    linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    channels = config.triplane_dim
    linears[0].weight[0] = 0.0
    linears[0].weight[0, 0::channels] = 1.0
    linears[0].bias[0] = CARRY
    for layer in linears[1:-1]:
        layer.weight[0] = 0.0
        layer.weight[0, 0] = 1.0
        layer.bias[0] = 0.0
    last = linears[-1]
    last.weight[0] = 0.0
    last.weight[0, 0] = 1.0
    # density = exp(raw + bias) = THRESHOLD * exp(sum - OBJECT_LEVEL)
    last.bias[0] = -CARRY - config.density_bias + math.log(THRESHOLD) - OBJECT_LEVEL
    return model.eval()


def save_model(model: TripoSR, folder: Path, config_text: str = PUBLISHED_CONFIG, checkpoint: bool = False) -> Path:
    """``config.yaml`` and the weights, as ``model.safetensors`` or, as the Hub has them, ``model.ckpt``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(config_text, encoding="utf-8")
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    if checkpoint:
        torch.save(state, folder / "model.ckpt")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return folder
