"""Random TripoSG models in the published file layout (``model_index.json`` and one folder per
component), for tests and benchmarks: the real weights (7.9 GB, on the Hub) cannot be fetched
everywhere. ``object_model`` shapes the field into one compact object, as a trained model's is."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from openlrm_blender.engine.models.triposg.config import COMPONENTS, INDEX_FILE, TripoSGConfig
from openlrm_blender.engine.models.triposg.model import NETWORKS, TripoSG
from openlrm_blender.engine.models.triposg.vae import unused_layout

# The published repository's configuration files (spec/triposg.md section 1; the DINOv2 and
# preprocessor files are facebook/dinov2-large's).
PUBLISHED_FILES: dict[str, dict] = {
    INDEX_FILE: {
        "_class_name": "TripoSGPipeline",
        "_diffusers_version": "0.32.2",
        "feature_extractor_dinov2": ["transformers", "BitImageProcessor"],
        "image_encoder_dinov2": ["transformers", "Dinov2Model"],
        "scheduler": ["triposg.schedulers.scheduling_rectified_flow", "RectifiedFlowScheduler"],
        "transformer": ["triposg.models.transformers.triposg_transformer", "TripoSGDiTModel"],
        "vae": ["triposg.models.autoencoders.autoencoder_kl_triposg", "TripoSGVAEModel"],
    },
    "transformer/config.json": {
        "_class_name": "TripoSGDiTModel", "cross_attention_dim": 1024, "in_channels": 64, "num_attention_heads": 16,
        "num_layers": 21, "width": 2048,
    },
    "vae/config.json": {
        "_class_name": "Tripo2VAEModel", "embed_frequency": 8, "embed_include_pi": False, "embedding_type": "frequency",
        "in_channels": 3, "latent_channels": 64, "num_attention_heads": 8, "num_layers_decoder": 16,
        "num_layers_encoder": 8, "width_decoder": 1024, "width_encoder": 512,
    },
    "image_encoder_dinov2/config.json": {
        "architectures": ["Dinov2Model"], "model_type": "dinov2", "hidden_size": 1024, "num_hidden_layers": 24,
        "num_attention_heads": 16, "mlp_ratio": 4, "patch_size": 14, "image_size": 518, "num_channels": 3,
        "layer_norm_eps": 1e-06, "layerscale_value": 1.0, "qkv_bias": True, "use_swiglu_ffn": False,
        "hidden_act": "gelu", "drop_path_rate": 0.0, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
    },
    "feature_extractor_dinov2/preprocessor_config.json": {
        "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
        "image_processor_type": "BitImageProcessor", "image_std": [0.229, 0.224, 0.225], "resample": 3,
        "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 256},
    },
    "scheduler/scheduler_config.json": {
        "_class_name": "RectifiedFlowScheduler", "num_train_timesteps": 1000, "shift": 1, "use_dynamic_shifting": False,
    },
}  # fmt: skip


def write_configs(folder: Path, files: dict[str, dict] = PUBLISHED_FILES) -> TripoSGConfig:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content, indent=2), encoding="utf-8")
    return TripoSGConfig.load(folder)


def copy_configs(source: Path, folder: Path) -> TripoSGConfig:
    """Another model folder's configuration files (a vector's, say) into ``folder``."""
    return write_configs(folder, {name: json.loads((source / name).read_text()) for name in PUBLISHED_FILES})


@torch.no_grad()
def object_model(
    config: TripoSGConfig, seed: int = 0, radii: tuple[float, float, float] = (0.55, 0.45, 0.35)
) -> TripoSG:
    """A random TripoSG whose field is one compact object whatever the image: every weight
    random and every cost real, but the query block's attention and feed-forward outputs are
    zeroed, so a point's query is its projected frequency features; channel 0 then carries
    cos(x)/a^2 + cos(y)/b^2 + cos(z)/c^2 - ..., positive inside an ellipsoid of about these
    ``radii`` (x, y, z, TripoSG's frame), and after the output LayerNorm (steadied by two
    large opposite channels) the logit follows it."""
    torch.manual_seed(seed)
    model = TripoSG(config).eval()
    decoder = model.vae.decoder
    query_block = decoder.blocks[-1]
    for layer in (query_block.attn2.to_out[0], query_block.ff.net[2]):
        layer.weight.zero_()
        layer.bias.zero_()
    frequencies = config.vae.embed_frequency
    project = decoder.proj_query
    project.weight.zero_()
    project.bias.zero_()
    for axis, radius in enumerate(radii):  # cos(c) ~ 1 - c^2 / 2: the sum is 0 on the ellipsoid
        project.weight[0, 3 + 3 * frequencies + axis * frequencies] = 2.0 / radius**2
        project.bias[0] -= 2.0 / radius**2 * math.cos(radius / math.sqrt(3.0))
    project.bias[1], project.bias[2] = 50.0, -50.0
    norm = decoder.norm_out
    norm.weight.fill_(1.0)
    norm.bias.zero_()
    decoder.proj_out.weight.zero_()
    decoder.proj_out.weight[0, 0] = -1.0  # the logit is the output negated
    decoder.proj_out.bias.zero_()
    return model


def save_model(model: TripoSG, folder: Path) -> Path:
    """The networks' weights in the published files (the VAE's encoder, unused at inference,
    as zeros), beside configuration files already written."""
    for name in NETWORKS:
        state = {key: value.contiguous() for key, value in getattr(model, name).state_dict().items()}
        if name == "vae":
            state |= {key: torch.zeros(value.shape) for key, value in unused_layout(model.config.vae).items()}
        path = folder / name / COMPONENTS[name][1]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path))
    return folder
