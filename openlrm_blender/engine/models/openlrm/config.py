"""Model hyper-parameters as stored in an OpenLRM v1.1 ``config.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import WeightsError

# The published models, by their Hugging Face Hub names.
PUBLISHED_MODELS = tuple(f"openlrm-{data}-{size}-1.1" for data in ("obj", "mix") for size in ("small", "base", "large"))
DEFAULT_MODEL = "openlrm-mix-base-1.1"

# The DINOv2-with-registers presets the published configs name.
ENCODER_PRESETS: dict[str, tuple[int, int]] = {  # name -> (depth, heads)
    "dinov2_vits14_reg": (12, 6),
    "dinov2_vitb14_reg": (12, 12),
}

# Input resolution is not part of config.json: the published inference settings
# pick it by model width.
PUBLISHED_INPUT_SIZE: dict[int, int] = {512: 224, 768: 336, 1024: 448}

_REQUIRED_KEYS = (
    "camera_embed_dim",
    "transformer_dim",
    "transformer_layers",
    "transformer_heads",
    "triplane_low_res",
    "triplane_high_res",
    "triplane_dim",
    "encoder_type",
    "encoder_model_name",
    "encoder_feat_dim",
)


@dataclass(frozen=True)
class ModelConfig:
    camera_embed_dim: int
    transformer_dim: int
    transformer_layers: int
    transformer_heads: int
    triplane_low_res: int
    triplane_high_res: int
    triplane_dim: int
    encoder_model_name: str
    encoder_feat_dim: int
    encoder_depth: int
    encoder_num_heads: int

    @property
    def published_input_size(self) -> int | None:
        """The image size the published demo feeds this model, if it is a published size."""
        return PUBLISHED_INPUT_SIZE.get(self.transformer_dim)

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config.json") -> ModelConfig:
        missing = [key for key in _REQUIRED_KEYS if key not in raw]
        if missing:
            raise WeightsError(f"{source}: missing keys {', '.join(missing)}")
        if raw["encoder_type"] != "dinov2":
            raise WeightsError(f"{source}: encoder_type {raw['encoder_type']!r} is not supported (only 'dinov2')")
        name = raw["encoder_model_name"]
        if name not in ENCODER_PRESETS and not {"encoder_depth", "encoder_num_heads"} <= raw.keys():
            raise WeightsError(
                f"{source}: unknown encoder_model_name {name!r} "
                f"(expected one of {', '.join(ENCODER_PRESETS)}, or encoder_depth and encoder_num_heads)"
            )
        depth, heads = ENCODER_PRESETS.get(name, (0, 0))
        try:
            config = cls(
                camera_embed_dim=int(raw["camera_embed_dim"]),
                transformer_dim=int(raw["transformer_dim"]),
                transformer_layers=int(raw["transformer_layers"]),
                transformer_heads=int(raw["transformer_heads"]),
                triplane_low_res=int(raw["triplane_low_res"]),
                triplane_high_res=int(raw["triplane_high_res"]),
                triplane_dim=int(raw["triplane_dim"]),
                encoder_model_name=name,
                encoder_feat_dim=int(raw["encoder_feat_dim"]),
                encoder_depth=int(raw.get("encoder_depth", depth)),
                encoder_num_heads=int(raw.get("encoder_num_heads", heads)),
            )
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{source}: a value is not a whole number ({exc})") from None
        if config.triplane_high_res != 2 * config.triplane_low_res:
            raise WeightsError(f"{source}: triplane_high_res must be twice triplane_low_res")
        for width, heads, what in (
            (config.transformer_dim, config.transformer_heads, "transformer_dim by transformer_heads"),
            (config.encoder_feat_dim, config.encoder_num_heads, "encoder_feat_dim by the encoder's heads"),
        ):
            if heads <= 0 or width % heads:
                raise WeightsError(f"{source}: cannot divide {what} ({width} / {heads})")
        return config

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WeightsError(f"{path}: file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise WeightsError(f"{path}: expected a JSON object")
        return cls.from_dict(raw, source=str(path))
