"""TRELLIS models in the published file layout (``pipeline.json``, ``ckpts/<stem>.json`` and
``.safetensors``, and the image encoder in ``dinov2/``), for tests and benchmarks: the real
weights (on the Hub) cannot be fetched everywhere. ``real_configs`` are microsoft/
TRELLIS-image-large's numbers (their tensors: spec/keys-trellis.tsv); a random model of any
size is written from them with the published mixed precision (the torsos in float16)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from openlrm_blender.engine.models.trellis.config import TrellisConfig
from openlrm_blender.engine.models.trellis.model import NETWORKS, Trellis
from openlrm_blender.engine.models.trellis.weights import HALF_LAYERS, TORSOS

GAUSSIANS = {
    "lr": {"_xyz": 1.0, "_features_dc": 1.0, "_opacity": 1.0, "_scaling": 1.0, "_rotation": 0.1},
    "perturb_offset": True, "voxel_size": 1.5, "num_gaussians": 32, "2d_filter_kernel_size": 0.1,
    "3d_filter_kernel_size": 9e-4, "scaling_bias": 4e-3, "opacity_bias": 0.1, "scaling_activation": "softplus",
}  # fmt: skip
DECODER = {"resolution": 64, "model_channels": 768, "latent_channels": 8, "num_blocks": 12, "num_heads": 12,
           "mlp_ratio": 4, "attn_mode": "swin", "window_size": 8, "use_fp16": True}  # fmt: skip
FLOW = {"in_channels": 8, "out_channels": 8, "model_channels": 1024, "cond_channels": 1024, "num_blocks": 24,
        "num_heads": 16, "mlp_ratio": 4, "pe_mode": "ape", "qk_rms_norm": True, "use_fp16": True}  # fmt: skip
# The real checkpoints: stem -> (role, class, args).
REAL_CHECKPOINTS = {
    "ss_flow_img_dit_L_16l8_fp16": ("sparse_structure_flow_model", "SparseStructureFlowModel",
                                    {"resolution": 16, "patch_size": 1, **FLOW}),
    "ss_dec_conv3d_16l8_fp16": ("sparse_structure_decoder", "SparseStructureDecoder",
                                {"out_channels": 1, "latent_channels": 8, "num_res_blocks": 2,
                                 "num_res_blocks_middle": 2, "channels": [512, 128, 32], "use_fp16": True}),
    "slat_flow_img_dit_L_64l8p2_fp16": ("slat_flow_model", "SLatFlowModel",
                                        {"resolution": 64, "patch_size": 2, "num_io_res_blocks": 2,
                                         "io_block_channels": [128], **FLOW}),
    "slat_dec_gs_swin8_B_64l8gs32_fp16": ("slat_decoder_gs", "SLatGaussianDecoder",
                                          {**DECODER, "representation_config": GAUSSIANS}),
    "slat_dec_rf_swin8_B_64l8r16_fp16": ("slat_decoder_rf", "SLatRadianceFieldDecoder",
                                         {**DECODER, "representation_config": {"rank": 16, "dim": 8}}),
    "slat_dec_mesh_swin8_B_64l8m256c_fp16": ("slat_decoder_mesh", "SLatMeshDecoder",
                                             {**DECODER, "representation_config": {"use_color": True}}),
}  # fmt: skip
SAMPLER = {"name": "FlowEulerGuidanceIntervalSampler", "args": {"sigma_min": 1e-5}}
REAL_PIPELINE = {
    "name": "TrellisImageTo3DPipeline",
    "args": {
        "models": {role: f"ckpts/{stem}" for stem, (role, _, _) in REAL_CHECKPOINTS.items()},
        "sparse_structure_sampler": {
            **SAMPLER, "params": {"steps": 25, "cfg_strength": 7.5, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0}
        },
        "slat_sampler": {
            **SAMPLER, "params": {"steps": 25, "cfg_strength": 3.0, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0}
        },
        "slat_normalization": {  # as the shared vector's pipeline.json gives them
            "mean": [-0.8019, 0.032, 0.3704, 0.0763, 0.4319, 1.4565, -0.7394, 0.4727],
            "std": [1.1775, 1.1834, 1.428, 1.8381, 1.827, 1.2932, 1.2703, 1.5934],
        },
        "image_cond_model": "dinov2_vitl14_reg",
    },
}  # fmt: skip
REAL_ENCODER = {
    "model_type": "dinov2_with_registers", "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
    "num_register_tokens": 4, "image_size": 518, "patch_size": 14, "mlp_ratio": 4, "layer_norm_eps": 1e-6,
    "hidden_act": "gelu", "use_swiglu_ffn": False, "qkv_bias": True, "num_channels": 3, "layerscale_value": 1.0,
}  # fmt: skip


def write_configs(folder: Path, depth: int | None = None) -> TrellisConfig:
    """The real configuration files into ``folder`` (``depth``: every network's blocks cut to
    it, the widths kept: a real-layout model small enough for a test)."""
    (folder / "ckpts").mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.json").write_text(json.dumps(REAL_PIPELINE, indent=1), encoding="utf-8")
    for stem, (_, name, args) in REAL_CHECKPOINTS.items():
        args = copy.deepcopy(args)
        if depth is not None and "num_blocks" in args:
            args["num_blocks"] = depth
        (folder / "ckpts" / f"{stem}.json").write_text(json.dumps({"name": name, "args": args}), encoding="utf-8")
    encoder = dict(REAL_ENCODER, num_hidden_layers=depth or REAL_ENCODER["num_hidden_layers"])
    (folder / "dinov2").mkdir(exist_ok=True)
    (folder / "dinov2" / "config.json").write_text(json.dumps(encoder), encoding="utf-8")
    return TrellisConfig.load(folder)


def save_random_model(folder: Path, depth: int | None = None, seed: int = 0) -> Path:
    """A random model of the real layout (at ``depth``) with the published mixed precision."""
    from openlrm_blender.engine.models.dinov2 import Dinov2Config

    config = write_configs(folder, depth)
    encoder_config = Dinov2Config.from_json(json.loads((folder / "dinov2" / "config.json").read_text()), folder)
    generator = torch.Generator().manual_seed(seed)
    model = Trellis(config, encoder_config)
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            fan_in = tensor.shape[-1] if tensor.ndim > 1 else 1
            tensor.copy_(torch.randn(tensor.shape, generator=generator) / max(fan_in, 1) ** 0.5 * 0.5)
    save_file(dict(model.image_encoder.state_dict()), folder / "dinov2" / "model.safetensors")
    for role, name in NETWORKS.items():  # the radiance field's decoder is never fetched nor run: none
        network = getattr(model, name)
        half = {
            f"{part}.{layer}.{key}"
            for part in TORSOS[name]
            for layer, module in getattr(network, part).named_modules()
            if isinstance(module, HALF_LAYERS)
            for key, _ in module.named_parameters(recurse=False)
        }
        state = {key: value.half() if key in half else value for key, value in network.state_dict().items()}
        state = {key: value.contiguous() for key, value in state.items()}
        save_file(state, folder / f"{config.checkpoints[role]}.safetensors")
    return folder
