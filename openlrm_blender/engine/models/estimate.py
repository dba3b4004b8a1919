"""How long a flow model's run takes on this machine, said before it starts (the sidebar's
estimate on the CPU; the benchmark checks it against runs): the run's floating-point work,
from each family's arithmetic (``triposg.work``, ``trellis.cost``), its matrix products and
its attention each over this machine's rate for them in the run's precision (``Speed``: a
CPU's fused attention gains little in bfloat16 while its products gain 2-4x), divided by the
share of those rates a whole run reaches (``EFFICIENCY``, measured on real-size runs).
Families that do not sample take seconds and have no estimate.

No PyTorch: Blender's process reads this module and must never import PyTorch. The rates are
measured where runs compute (``runtime.measure_speed``: in the model's process, once a
session, cached by the add-on; or in the benchmark)."""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from .arithmetic import Flop
from .config_files import read_json
from .dinov2_config import Dinov2Config
from .trellis import cost as trellis_cost
from .trellis.config import FlowConfig, LatentDecoderConfig, SamplerConfig, TrellisConfig
from .triposg import work as triposg_work
from .triposg.config import TripoSGConfig

# The share of the measured rates (``runtime.measure_speed``, beside the run) a whole run reaches, per
# family and precision; measured on a 2-core AMD EPYC Zen 4 (AVX-512 BF16: products 4.4x
# faster in bfloat16, attention no faster) with real-size random models (``benchmarks/bench.py``,
# 2 steps per stage, weights loaded; docs/speed.md): TripoSG 0.97 in float32 and 0.89 in
# bfloat16 (grid 256), TRELLIS 0.81-0.86 in float32 (a typical object's voxels, its own: its
# decoders' gathers and the Gaussians' colours are not products); TRELLIS in bfloat16 taken as
# TripoSG's ratio of the two (its run measured since: the estimate 0.95 of it).
EFFICIENCY = {
    "triposg": {"float32": 0.95, "bfloat16": 0.88},
    "trellis": {"float32": 0.83, "bfloat16": 0.77},
}
# What the estimate offers as a quick first look: the sampling steps (and TripoSG's grid) cut to these.
DRAFTS = {"triposg": {"steps": 10, "resolution": 256}, "trellis": {"steps": 10, "latent_steps": 10}}


class Speed(NamedTuple):
    """A device's rates in one precision, GFLOP/s."""

    products: float  # matrix products
    attention: float  # fused attention (scores and weighted values)


class TrellisNumbers(NamedTuple):
    """What a TRELLIS run's arithmetic reads of its configuration."""

    structure_flow: FlowConfig
    latent_flow: FlowConfig
    gaussian_decoder: LatentDecoderConfig
    mesh_decoder: LatentDecoderConfig
    structure_sampler: SamplerConfig
    latent_sampler: SamplerConfig
    encoder: Dinov2Config


# The published TRELLIS-image-large, for a run from the Hub (a local folder's files say its
# own): the structure flow and the decoders are the configurations' defaults; the latent flow
# makes patches of 2 through res-blocks of 128 channels; both samplers guide within t of 0.5
# to 1 and rescale time by 3; the image encoder is DINOv2-L/14's.
TRELLIS_PUBLISHED = TrellisNumbers(
    FlowConfig(), FlowConfig(resolution=64, patch_size=2, io_block_channels=[128]),
    LatentDecoderConfig(representation_config={"num_gaussians": 32}),
    LatentDecoderConfig(representation_config={"use_color": True}),
    SamplerConfig(steps=25, cfg_strength=7.5, cfg_interval=(0.5, 1.0), rescale_t=3.0),
    SamplerConfig(steps=25, cfg_strength=3.0, cfg_interval=(0.5, 1.0), rescale_t=3.0), Dinov2Config(),
)  # fmt: skip


def estimated(family: str) -> bool:
    """Whether runs of ``family`` get an estimate (those that sample, and so take minutes on a CPU)."""
    return family in EFFICIENCY


def rate_precision(precision: str) -> str:
    """The precision whose rates a CPU run of ``precision`` computes at."""
    return "bfloat16" if precision == "bfloat16" else "float32"


def run_flop(
    family: str, settings: Mapping[str, object], folder: Path | None = None, voxels: trellis_cost.Voxels | None = None
) -> Flop:
    """Floating-point work of a run of ``family`` with these settings (the engine's names:
    TripoSG's steps, guidance, tokens, resolution and colours; TRELLIS's steps, guidance,
    latent_steps, latent_guidance, and views and view_mode for several photos); ``folder``:
    a local model folder, whose configuration files say the model's size; ``voxels``: the
    object TRELLIS paints or makes, where known (else a typical one)."""
    if family == "triposg":
        configs = () if folder is None else _configs("triposg", Path(folder))
        work = triposg_work.run_flop(
            int(settings["steps"]), float(settings["guidance"]), int(settings["tokens"]), int(settings["resolution"]),
            *configs,
        )  # fmt: skip
        if settings.get("colours") == "trellis":  # TRELLIS's second stage paints the shape, as published
            steps = TRELLIS_PUBLISHED.latent_sampler.steps
            work += _trellis_flop(TRELLIS_PUBLISHED, steps, settings, voxels, painting=True)
        return work
    if family == "trellis":
        numbers = TRELLIS_PUBLISHED if folder is None else _configs("trellis", Path(folder))
        return _trellis_flop(numbers, int(settings["latent_steps"]), settings, voxels)
    raise ValueError(f"no estimate for {family!r} runs: they take seconds")


def run_seconds(
    family: str, settings: Mapping[str, object], speed: Speed, precision: str, folder: Path | None = None,
    voxels: trellis_cost.Voxels | None = None,
) -> float:  # fmt: skip
    """The run's seconds at ``speed``, the rates measured in ``precision``."""
    work = run_flop(family, settings, folder, voxels)
    return work.seconds(speed.products * 1e9, speed.attention * 1e9) / EFFICIENCY[family][rate_precision(precision)]


def draft(family: str, settings: Mapping[str, object]) -> dict[str, object] | None:
    """A draft's settings (the steps and grid cut to ``DRAFTS``), or None where the settings
    ask for no more than a draft already."""
    cut = {name: min(int(settings[name]), value) for name, value in DRAFTS[family].items()}
    if all(cut[name] == settings[name] for name in cut):
        return None
    return {**settings, **cut}


def _trellis_flop(
    config: TrellisNumbers, latent_steps: int, settings: Mapping, voxels: trellis_cost.Voxels | None,
    painting: bool = False,
) -> Flop:  # fmt: skip
    """The photos' tokens, stage 1's calls (not when painting), stage 2's on the object's
    voxels (a typical object's where unknown), and the decoders after them."""
    views, mode = int(settings.get("views", 1)), str(settings.get("view_mode", "stochastic"))
    voxels = voxels or trellis_cost.Voxels.typical()
    encoder = config.encoder
    work = views * trellis_cost.encoder_flop(encoder.hidden_size, encoder.num_hidden_layers, encoder.mlp_ratio)
    if not painting:
        steps, guidance = int(settings["steps"]), float(settings["guidance"])
        calls = trellis_cost.calls(config.structure_sampler, steps, guidance, views, mode)
        work += sum(calls) * trellis_cost.structure_call_flop(config.structure_flow)
    guidance = float(settings.get("latent_guidance", config.latent_sampler.cfg_strength))
    calls = trellis_cost.calls(config.latent_sampler, latent_steps, guidance, views, mode)
    work += sum(calls) * trellis_cost.latent_call_flop(config.latent_flow, voxels)
    mesh = None if painting else config.mesh_decoder  # a painted mesh is the caller's own
    return work + trellis_cost.decoders_flop(config.gaussian_decoder, mesh, voxels)


def _configs(family: str, folder: Path) -> tuple | TrellisNumbers:
    """What a local folder's configuration files say, read once while they stay as they are."""
    index = folder / ("model_index.json" if family == "triposg" else "pipeline.json")
    try:
        changed = index.stat().st_mtime
    except OSError:
        changed = 0.0
    return _read_configs(family, folder, changed)


@functools.lru_cache(maxsize=4)
def _read_configs(family: str, folder: Path, changed: float) -> tuple | TrellisNumbers:
    if family == "triposg":
        config = TripoSGConfig.load(folder)
        return config.transformer, config.vae, config.image_encoder
    config = TrellisConfig.load(folder)
    path = folder / "dinov2" / "config.json"  # a local folder's image encoder
    encoder = Dinov2Config.from_json(read_json(path), path) if path.is_file() else Dinov2Config()
    return TrellisNumbers(*(getattr(config, name) for name in TrellisNumbers._fields[:-1]), encoder)


def cpu_name() -> str:
    """This machine's processor and its logical cores, read without PyTorch: a measured rate
    holds for this pair (and the PyTorch that measured it)."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            name = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), name)
    except OSError:  # not Linux
        pass
    return f"{name}, {os.cpu_count()} logical cores"
