"""TripoSG's hyper-parameters, read from the component folders of its Hub repository (the
diffusers layout): ``model_index.json`` names the components, and each folder's JSON file
holds its numbers. The class names in them are the published code's and are not read (the
VAE's even says ``Tripo2VAEModel``): the numbers are."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ...errors import WeightsError
from ..config_files import dataclass_from, read_json
from ..dinov2_config import Dinov2Config

INDEX_FILE = "model_index.json"
# Each component: its folder, its configuration file, its weights file.
COMPONENTS = {
    "image_encoder_dinov2": ("config.json", "model.safetensors"),
    "transformer": ("config.json", "diffusion_pytorch_model.safetensors"),
    "vae": ("config.json", "diffusion_pytorch_model.safetensors"),
    "feature_extractor_dinov2": ("preprocessor_config.json", None),
    "scheduler": ("scheduler_config.json", None),
}


@dataclass(frozen=True)
class TransformerConfig:
    """The flow transformer (the published TripoSGDiTModel)."""

    width: int = 2048
    num_attention_heads: int = 16
    num_layers: int = 21
    in_channels: int = 64
    cross_attention_dim: int = 1024


@dataclass(frozen=True)
class VAEConfig:
    """The shape autoencoder; only its decoder runs at inference."""

    latent_channels: int = 64
    num_attention_heads: int = 8
    width_encoder: int = 512
    width_decoder: int = 1024
    num_layers_encoder: int = 8
    num_layers_decoder: int = 16
    embed_frequency: int = 8
    embed_include_pi: bool = False
    embedding_type: str = "frequency"
    in_channels: int = 3


@dataclass(frozen=True)
class PreprocessorConfig:
    """The feature extractor (transformers' BitImageProcessor): resize, centre crop, normalise."""

    shortest_edge: int = 256
    crop_size: int = 224
    resample: int = 3  # PIL's bicubic
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SchedulerConfig:
    num_train_timesteps: int = 1000
    shift: float = 1.0
    use_dynamic_shifting: bool = False


@dataclass(frozen=True)
class TripoSGConfig:
    image_encoder: Dinov2Config
    transformer: TransformerConfig
    vae: VAEConfig
    preprocessor: PreprocessorConfig
    scheduler: SchedulerConfig

    @classmethod
    def load(cls, folder: Path) -> TripoSGConfig:
        """Every component's configuration in ``folder``, checked for what this engine runs."""
        index = read_json(folder / INDEX_FILE)
        absent = [name for name in COMPONENTS if name not in index]
        if absent:
            raise WeightsError(f"{folder / INDEX_FILE}: no {', '.join(absent)}: not a TripoSG model folder")

        def component(name: str) -> tuple[dict, Path]:
            path = folder / name / COMPONENTS[name][0]
            return read_json(path), path

        encoder = Dinov2Config.from_json(*component("image_encoder_dinov2"))
        raw, path = component("transformer")
        transformer = dataclass_from(
            TransformerConfig, raw, path, tuple(field.name for field in fields(TransformerConfig))
        )
        raw, path = component("vae")
        vae = dataclass_from(
            VAEConfig, raw, path, ("latent_channels", "num_attention_heads", "width_decoder", "num_layers_decoder")
        )
        if vae.embedding_type != "frequency" or vae.embed_include_pi:
            raise WeightsError(f"{path}: only the frequency embedding without pi (TripoSG's) is supported")
        raw, path = component("feature_extractor_dinov2")
        size, crop = raw.get("size", {}), raw.get("crop_size", {})
        if "shortest_edge" not in size or crop.get("height") != crop.get("width"):
            raise WeightsError(f"{path}: expected a shortest-edge resize and a square centre crop")
        preprocessor = PreprocessorConfig(
            shortest_edge=int(size["shortest_edge"]),
            crop_size=int(crop["height"]),
            resample=int(raw.get("resample", 3)),
            rescale_factor=float(raw.get("rescale_factor", 1 / 255)),
            image_mean=tuple(float(value) for value in raw.get("image_mean", PreprocessorConfig.image_mean)),
            image_std=tuple(float(value) for value in raw.get("image_std", PreprocessorConfig.image_std)),
        )
        raw, path = component("scheduler")
        scheduler = dataclass_from(SchedulerConfig, raw, path, ())
        if scheduler.use_dynamic_shifting:
            raise WeightsError(f"{path}: dynamic shifting is not supported (TripoSG's scheduler has none)")
        for width, heads, what, where in (
            (transformer.width, transformer.num_attention_heads, "width by num_attention_heads", "transformer"),
            (vae.width_decoder, vae.num_attention_heads, "width_decoder by num_attention_heads", "vae"),
        ):
            if heads <= 0 or width % heads:
                raise WeightsError(f"{folder / where}: cannot divide {what} ({width} / {heads})")
        return cls(encoder, transformer, vae, preprocessor, scheduler)
