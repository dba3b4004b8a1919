"""DINOv2's configuration, as Hugging Face's ``config.json`` holds it: apart from the network
(``dinov2``), so that what only reads the numbers (the add-on's estimates, TripoSG's
configuration) never imports PyTorch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .config_files import dataclass_from

MODEL_TYPES = ("dinov2", "dinov2_with_registers")  # config.json's model_type in the two layouts


@dataclass(frozen=True)
class Dinov2Config:
    """The numbers of Hugging Face's ``config.json``: DINOv2-L/14 by default, without registers."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    mlp_ratio: int = 4
    patch_size: int = 14
    image_size: int = 518  # the stored position table: (518 / 14)^2 patches plus the class token
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu"
    qkv_bias: bool = True
    use_swiglu_ffn: bool = False
    num_channels: int = 3
    num_register_tokens: int = 0

    @classmethod
    def from_json(cls, raw: dict, path: Path) -> Dinov2Config:
        """The configuration in ``raw`` (read from ``path``), checked for what this network runs."""
        if raw.get("model_type", MODEL_TYPES[0]) not in MODEL_TYPES:
            raise WeightsError(f"{path}: model_type {raw['model_type']!r} is not DINOv2 ({' or '.join(MODEL_TYPES)})")
        config = dataclass_from(
            cls, raw, path, ("hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size")
        )
        if config.hidden_act != "gelu" or config.use_swiglu_ffn or not config.qkv_bias:
            raise WeightsError(
                f"{path}: only DINOv2 with exact GELU, no SwiGLU and query/key/value biases is supported"
            )
        if config.num_attention_heads <= 0 or config.hidden_size % config.num_attention_heads:
            raise WeightsError(
                f"{path}: cannot divide hidden_size by num_attention_heads "
                f"({config.hidden_size} / {config.num_attention_heads})"
            )
        return config
