"""TRELLIS's hyper-parameters, read from the published repository's own files:
``pipeline.json`` names each network's checkpoint (``ckpts/<stem>``), the two samplers'
settings and the latent's normalisation; each ``ckpts/<stem>.json`` holds a network's class
and its numbers. Nothing here is hard-coded that the files say: the tiny test model and the
real one differ only in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import WeightsError
from ..config_files import dataclass_from, read_json

PIPELINE_FILE = "pipeline.json"
HEAD_CHANNELS = 64  # a head's width where a network's file gives no number of heads
# Each network a run uses, by its role in pipeline.json, and the classes its checkpoint may name
# (the published "Elastic" variants are the same networks with a training-time memory manager).
# The radiance field's decoder (role "slat_decoder_rf") makes nothing a mesh needs: it is
# neither fetched nor loaded.
ROLES = {
    "sparse_structure_flow_model": ("SparseStructureFlowModel",),
    "sparse_structure_decoder": ("SparseStructureDecoder",),
    "slat_flow_model": ("SLatFlowModel", "ElasticSLatFlowModel"),
    "slat_decoder_gs": ("SLatGaussianDecoder", "ElasticSLatGaussianDecoder"),
    "slat_decoder_mesh": ("SLatMeshDecoder", "ElasticSLatMeshDecoder"),
}
RADIANCE = ("slat_decoder_rf", ("SLatRadianceFieldDecoder", "ElasticSLatRadianceFieldDecoder"))


@dataclass(frozen=True)
class FlowConfig:
    """Either flow transformer: the structure's (dense, over a res^3 grid of patches) or the
    latent's (sparse, over the occupied voxels, through res-blocks that halve them)."""

    resolution: int = 16
    in_channels: int = 8
    out_channels: int = 8
    model_channels: int = 1024
    cond_channels: int = 1024
    num_blocks: int = 24
    num_heads: int = 0  # 0: a head per 64 channels, the published default
    mlp_ratio: float = 4.0
    patch_size: int = 1
    num_io_res_blocks: int = 2
    io_block_channels: list = field(default_factory=list)
    pe_mode: str = "ape"
    qk_rms_norm: bool = True
    qk_rms_norm_cross: bool = False
    share_mod: bool = False
    use_skip_connection: bool = True
    use_fp16: bool = False

    @property
    def heads(self) -> int:
        return self.num_heads or self.model_channels // HEAD_CHANNELS


@dataclass(frozen=True)
class StructureDecoderConfig:
    """The occupancy decoder: a dense 3D convolution net from the structure latent up to the voxel grid."""

    out_channels: int = 1
    latent_channels: int = 8
    num_res_blocks: int = 2
    num_res_blocks_middle: int = 2
    channels: list = field(default_factory=lambda: [512, 128, 32])
    norm_type: str = "layer"
    use_fp16: bool = False


@dataclass(frozen=True)
class LatentDecoderConfig:
    """The three decoders of the structured latent share a sparse transformer torso; each reads
    its own part of ``representation_config``."""

    resolution: int = 64
    model_channels: int = 768
    latent_channels: int = 8
    num_blocks: int = 12
    num_heads: int = 0  # 0: a head per 64 channels, the published default
    mlp_ratio: float = 4.0
    attn_mode: str = "swin"
    window_size: int = 8
    pe_mode: str = "ape"
    qk_rms_norm: bool = False
    use_fp16: bool = False
    representation_config: dict = field(default_factory=dict)

    @property
    def heads(self) -> int:
        return self.num_heads or self.model_channels // HEAD_CHANNELS


@dataclass(frozen=True)
class SamplerConfig:
    """``FlowEulerGuidanceIntervalSampler``: its steps, guidance strength, the t interval the
    guidance applies in, and the time rescale."""

    steps: int = 25
    cfg_strength: float = 5.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)
    rescale_t: float = 1.0

    def times(self, steps: int) -> np.ndarray:
        """``steps + 1`` times from 1 to 0, each rescaled t' = r t / (1 + (r - 1) t): float64, as
        published (the guidance interval is judged on them)."""
        t = np.linspace(1, 0, steps + 1)
        return self.rescale_t * t / (1 + (self.rescale_t - 1) * t)

    def guided(self, t: float, guidance: float) -> bool:
        """Whether a step at ``t`` asks for the unconditional velocity too (guidance 0 needs none)."""
        return bool(guidance) and self.cfg_interval[0] <= t <= self.cfg_interval[1]


@dataclass(frozen=True)
class TrellisConfig:
    structure_flow: FlowConfig
    structure_decoder: StructureDecoderConfig
    latent_flow: FlowConfig
    gaussian_decoder: LatentDecoderConfig
    mesh_decoder: LatentDecoderConfig
    structure_sampler: SamplerConfig
    latent_sampler: SamplerConfig
    latent_mean: tuple[float, ...]
    latent_std: tuple[float, ...]
    checkpoints: dict[str, str]  # role -> "ckpts/<stem>", relative to the folder

    @classmethod
    def load(cls, folder: Path) -> TrellisConfig:
        path = folder / PIPELINE_FILE
        args = read_json(path)["args"]
        checkpoints = checkpoint_stems(folder)
        networks = {role: _network_args(folder, role, checkpoints[role]) for role in ROLES}
        normalisation = args.get("slat_normalization") or {}
        mean, std = normalisation.get("mean"), normalisation.get("std")
        if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std)):
            raise WeightsError(f"{path}: args.slat_normalization needs mean and std lists of one length")
        return cls(
            structure_flow=dataclass_from(FlowConfig, networks["sparse_structure_flow_model"], path),
            structure_decoder=dataclass_from(StructureDecoderConfig, networks["sparse_structure_decoder"], path),
            latent_flow=dataclass_from(FlowConfig, networks["slat_flow_model"], path),
            gaussian_decoder=dataclass_from(LatentDecoderConfig, networks["slat_decoder_gs"], path),
            mesh_decoder=dataclass_from(LatentDecoderConfig, networks["slat_decoder_mesh"], path),
            structure_sampler=_sampler(args, "sparse_structure_sampler", path),
            latent_sampler=_sampler(args, "slat_sampler", path),
            latent_mean=tuple(float(value) for value in mean),
            latent_std=tuple(float(value) for value in std),
            checkpoints=checkpoints,
        )


def checkpoint_stems(folder: Path) -> dict[str, str]:
    """Each network's checkpoint ("ckpts/<stem>", relative to the folder) as pipeline.json names it."""
    path = folder / PIPELINE_FILE
    args = read_json(path).get("args")
    if not isinstance(args, dict) or not isinstance(args.get("models"), dict):
        raise WeightsError(f"{path}: no args.models: not a TRELLIS pipeline")
    missing = [role for role in ROLES if role not in args["models"]]
    if missing:
        raise WeightsError(f"{path}: args.models has no {', '.join(missing)}")
    return {role: str(args["models"][role]) for role in ROLES}


def _network_args(folder: Path, role: str, stem: str) -> dict:
    """A checkpoint's ``args``, once its ``name`` is one of the classes the role takes."""
    path = folder / f"{stem}.json"
    raw = read_json(path)
    classes = dict([*ROLES.items(), RADIANCE])[role]
    if raw.get("name") not in classes:
        raise WeightsError(f"{path}: a {raw.get('name')!r}, where {role} is a {classes[0]}")
    if not isinstance(raw.get("args"), dict):
        raise WeightsError(f"{path}: no args")
    return raw["args"]


def _sampler(args: dict, role: str, path: Path) -> SamplerConfig:
    sampler = args.get(role)
    if not isinstance(sampler, dict) or not isinstance(sampler.get("params"), dict):
        raise WeightsError(f"{path}: args.{role} has no params")
    if sampler.get("name") != "FlowEulerGuidanceIntervalSampler":
        raise WeightsError(f"{path}: args.{role} is a {sampler.get('name')!r}, not a FlowEulerGuidanceIntervalSampler")
    params = dict(sampler["params"])
    if "cfg_interval" in params:
        interval = params["cfg_interval"]
        if not (isinstance(interval, list) and len(interval) == 2):
            raise WeightsError(f"{path}: args.{role}.params.cfg_interval = {interval!r} is not a [low, high] pair")
        params["cfg_interval"] = (float(interval[0]), float(interval[1]))
    return dataclass_from(SamplerConfig, params, path, required=("steps", "cfg_strength"))


def radiance_decoder_config(folder: Path) -> LatentDecoderConfig:
    """The radiance field decoder's numbers, where a folder has its checkpoint (checked
    against the published list, never run)."""
    path = folder / PIPELINE_FILE
    stem = read_json(path)["args"]["models"][RADIANCE[0]]
    return dataclass_from(LatentDecoderConfig, _network_args(folder, RADIANCE[0], stem), path)
