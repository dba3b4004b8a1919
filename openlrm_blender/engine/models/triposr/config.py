"""TripoSR's hyper-parameters, read from its ``config.yaml`` (and a ``vit_config.json`` beside
it, where one is).

The YAML is OmegaConf's: a value may be a reference to another key, ``${tokenizer.num_channels}``;
these are resolved here (no OmegaConf). The ``*_cls`` keys name the published classes and
are not read: the numbers are. The image encoder's own configuration is not in the repo
(the published code fetches ``facebook/dino-vitb16``'s): its ViT-B/16 values are the preset.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from ...errors import WeightsError

CONFIG_FILE = "config.yaml"
VIT_CONFIG_FILE = "vit_config.json"
_REFERENCE = re.compile(r"\$\{([\w.]+)\}")


@dataclass(frozen=True)
class ViTConfig:
    """The image encoder (transformers' ViTModel): facebook/dino-vitb16 unless overridden."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    patch_size: int = 16
    image_size: int = 224  # the stored position table: (image_size / patch_size)^2 patches plus the class token
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True
    hidden_act: str = "gelu"

    @classmethod
    def load(cls, path: Path) -> ViTConfig:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{path}: cannot read the image encoder's configuration ({exc})") from None
        config = cls(**{field.name: raw[field.name] for field in fields(cls) if field.name in raw})
        if config.hidden_act != "gelu" or not config.qkv_bias:
            raise WeightsError(f"{path}: only exact-GELU ViTs with query/key/value biases are supported")
        return config


@dataclass(frozen=True)
class TripoSRConfig:
    cond_image_size: int
    plane_size: int
    num_channels: int  # the triplane tokens' width
    num_attention_heads: int
    attention_head_dim: int
    num_layers: int
    cross_attention_dim: int
    norm_num_groups: int
    triplane_dim: int  # the upsampler's output channels per plane
    decoder_in_channels: int
    decoder_neurons: int
    decoder_hidden_layers: int
    radius: float
    density_bias: float
    vit: ViTConfig = ViTConfig()

    @classmethod
    def from_yaml(cls, text: str, vit: ViTConfig | None = None, where: str = CONFIG_FILE) -> TripoSRConfig:
        try:
            raw = resolve_references(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise WeightsError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None

        def number(section: str, key: str, default=None):
            value = raw.get(section, {}).get(key, default) if isinstance(raw.get(section), dict) else default
            if value is None:
                raise WeightsError(f"{where}: {section}.{key} is missing")
            return value

        decoder_activation = number("decoder", "activation")
        renderer = (number("renderer", "feature_reduction"), number("renderer", "density_activation"))
        if decoder_activation != "silu" or renderer != ("concat", "exp"):
            raise WeightsError(
                f"{where}: only TripoSR's published decoder (silu, concatenated planes, exp density) is supported"
            )
        if "cond_image_size" not in raw:
            raise WeightsError(f"{where}: cond_image_size is missing")
        return cls(
            cond_image_size=int(raw["cond_image_size"]),
            plane_size=int(number("tokenizer", "plane_size")),
            num_channels=int(number("tokenizer", "num_channels")),
            num_attention_heads=int(number("backbone", "num_attention_heads")),
            attention_head_dim=int(number("backbone", "attention_head_dim")),
            num_layers=int(number("backbone", "num_layers")),
            cross_attention_dim=int(number("backbone", "cross_attention_dim")),
            norm_num_groups=int(number("backbone", "norm_num_groups", 32)),
            triplane_dim=int(number("post_processor", "out_channels")),
            decoder_in_channels=int(number("decoder", "in_channels")),
            decoder_neurons=int(number("decoder", "n_neurons")),
            decoder_hidden_layers=int(number("decoder", "n_hidden_layers")),
            radius=float(number("renderer", "radius")),
            density_bias=float(number("renderer", "density_bias")),
            vit=vit or ViTConfig(),
        )

    @classmethod
    def load(cls, folder: Path) -> TripoSRConfig:
        """``config.yaml`` in ``folder``, with ``vit_config.json`` replacing the ViT preset where present."""
        path = folder / CONFIG_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WeightsError(f"{path}: cannot read it ({exc})") from None
        vit = ViTConfig.load(folder / VIT_CONFIG_FILE) if (folder / VIT_CONFIG_FILE).is_file() else None
        return cls.from_yaml(text, vit, str(path))


def resolve_references(node, root=None):
    """OmegaConf's ``${a.b}`` references replaced by the values they name (a whole-value
    reference keeps the value's type; one inside a string is formatted into it)."""
    root = node if root is None else root
    if isinstance(node, dict):
        return {key: resolve_references(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_references(value, root) for value in node]
    if not isinstance(node, str) or "${" not in node:
        return node

    def lookup(dotted: str, seen: tuple[str, ...] = ()):
        if dotted in seen:
            raise WeightsError(f"{CONFIG_FILE}: the reference ${{{dotted}}} refers to itself")
        value = root
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                raise WeightsError(f"{CONFIG_FILE}: the reference ${{{dotted}}} names no key")
            value = value[part]
        whole = _REFERENCE.fullmatch(value) if isinstance(value, str) else None
        return lookup(whole[1], (*seen, dotted)) if whole else resolve_references(value, root)

    whole = _REFERENCE.fullmatch(node)
    if whole:
        return lookup(whole[1])
    return _REFERENCE.sub(lambda match: str(lookup(match[1])), node)
