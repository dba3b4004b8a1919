"""A random TRELLIS of the real size whose first stage finds one object's surface, for the
benchmark: stage 2's work follows the voxels stage 1 finds, and a random structure flow finds
half the grid (131,000 voxels, six times a typical object's), so its timings would say
nothing about a real run.

Every weight stays random and every product is computed (its cost is real); only the two
stage-1 networks are steered. The flow's blocks add nothing to their input (their gates and
the cross-attention's output are zero) and its velocity is read from the position embedding,
whose channel 0 holds a signed field that is zero on three nested rounded cubes; the structure
decoder carries that field up to the 64^3 grid, interpolating at each 2x upsampling, and its
last layer turns the field's magnitude into the logit, so a thin shell around each surface is
occupied (the noise roughens it). With seed 42: about 21,000 voxels with 9.5 neighbours each
and 3.6 voxels per token, a typical object's numbers (engine/models/trellis/cost.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from openlrm_blender.engine.models.trellis.config import TrellisConfig
from tests.support.random_trellis import save_random_model

# The surfaces, in voxels of the 64^3 grid: the outer one's half width, the gap to the next,
# how many, and how square (the exponent of the norm whose level sets they are).
OUTER, GAP, SURFACES, SQUARENESS = 27.0, 7.0, 3, 6
GAIN = 10.0  # the field's slope per voxel in the sampled latent: the noise's 1 moves a surface 0.1 voxel
STEADY = 1000.0  # the flow's two opposite channels that keep its final layer norm's scale
CARRIED = 30.0  # the decoder's constant channel: its last norm's scale, so how thin the shell is


def interpolation(channels_in: int, channel: int, sign: float = 1.0) -> torch.Tensor:
    """A 3x3x3 kernel giving each of a voxel's eight children the trilinear interpolation of
    ``channel`` at its centre (a quarter of a parent's width off the parent's)."""
    sides = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.75, 0.25]])  # child 0 leans on the lower neighbour
    kernel = torch.zeros(8, channels_in, 3, 3, 3)
    for child in range(8):
        x, y, z = child >> 2 & 1, child >> 1 & 1, child & 1
        kernel[child, channel] = sign * sides[x][:, None, None] * sides[y][None, :, None] * sides[z][None, None, :]
    return kernel


def shell_field(resolution: int, fine: int) -> torch.Tensor:
    """(resolution^3,) the signed field at each latent cell's centre: a sine of the distance
    in fine voxels (its slope 1 at every surface), away from zero outside the outermost and
    inside the innermost."""
    cells = torch.arange(resolution, dtype=torch.float64) * (fine // resolution) + (fine // resolution - 1) / 2
    offsets = [(axis - (fine - 1) / 2).abs() for axis in torch.meshgrid(cells, cells, cells, indexing="ij")]
    distance = sum(offset**SQUARENESS for offset in offsets) ** (1 / SQUARENESS)
    inward = (OUTER - distance).clamp(min=-GAP / 2, max=(SURFACES - 0.5) * GAP)
    field = torch.sin(math.pi * inward / GAP) * GAP / math.pi + (OUTER - distance - inward)
    return field.reshape(-1).float()


@torch.no_grad()
def steer_structure(folder: Path) -> None:
    """Rewrite the stage-1 checkpoints of a random model in ``folder`` as described above."""
    config = TrellisConfig.load(folder)
    flow_path = folder / f"{config.checkpoints['sparse_structure_flow_model']}.safetensors"
    decoder_path = folder / f"{config.checkpoints['sparse_structure_decoder']}.safetensors"
    flow, decoder = load_file(flow_path), load_file(decoder_path)
    width = config.structure_flow.model_channels
    for key in list(flow):
        if key.endswith(("cross_attn.to_out.weight", "cross_attn.to_out.bias")):
            flow[key].zero_()
        elif key.endswith(("adaLN_modulation.1.weight", "adaLN_modulation.1.bias")):
            flow[key][2 * width : 3 * width] = 0  # the attention's gate
            flow[key][5 * width :] = 0  # the feed-forward's
    flow["input_layer.weight"].zero_()
    flow["input_layer.bias"].zero_()
    positions = torch.zeros_like(flow["pos_emb"])
    positions[:, 0] = shell_field(config.structure_flow.resolution, config.mesh_decoder.resolution)
    positions[:, 1], positions[:, 2] = STEADY, -STEADY
    flow["pos_emb"] = positions
    flow["out_layer.weight"].zero_()
    flow["out_layer.weight"][0, 0] = -GAIN * (2 * STEADY**2 / width) ** 0.5  # the field, its sign turned
    flow["out_layer.bias"].zero_()

    for key in list(decoder):
        if key.endswith(("conv2.weight", "conv2.bias")):
            decoder[key].zero_()  # every res-block passes its input on
    decoder["input_layer.weight"].zero_()
    decoder["input_layer.weight"][0, 0, 1, 1, 1] = 1.0
    decoder["input_layer.bias"].zero_()
    decoder["input_layer.bias"][2] = CARRIED
    upsamples = sorted(key for key in decoder if key.endswith(".conv.weight"))
    for index, key in enumerate(upsamples):
        weight, bias = decoder[key], decoder[key.replace("weight", "bias")]
        channels_in = weight.shape[1]
        weight.zero_()
        bias.zero_()
        weight[0:8] = interpolation(channels_in, 0).to(weight.dtype)
        bias[16:24] = CARRIED
        if index == len(upsamples) - 1:
            weight[8:16] = interpolation(channels_in, 0, -1.0).to(weight.dtype)
    decoder["out_layer.0.weight"].fill_(1.0)
    decoder["out_layer.0.bias"].zero_()
    decoder["out_layer.2.weight"].zero_()
    decoder["out_layer.2.weight"][0, 0:2, 1, 1, 1] = -1.0  # minus |field|, through the norm and SiLU
    decoder["out_layer.2.bias"].zero_()
    save_file(flow, flow_path)
    save_file(decoder, decoder_path)


def save_object_model(folder: Path, depth: int | None = None) -> Path:
    """A random model of the real layout whose first stage finds the shell."""
    save_random_model(folder, depth)
    steer_structure(folder)
    return folder
