"""What the sidebar says before a run about its time on the CPU: the engine's estimate
(``engine.models.estimate``: the run's arithmetic over this machine's matrix-product rate) for
the settings Generate will send, and a draft's. The rate is measured once by the model's
process (``jobs.matmul_rate``; the sidebar's button starts it) and kept for the session in
``Runtime`` and on disk in the add-on's user folder; until then the estimate is pending."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..engine.models import estimate
from ..engine.models.registry import Family
from ..engine.options import SETTINGS, Options
from ..engine.progress import duration
from ..engine.pytorch import torch_found
from ..jobs import matmul_rate
from .preferences import pytorch_root
from .state import Runtime


def on_the_cpu(device: str) -> bool:
    """Whether runs go to the CPU: chosen, or "auto" where the last check saw no GPU."""
    return device == "cpu" or (
        device == "auto" and not any(gpu in Runtime.torch_devices for gpu in ("CUDA", "ROCm", "MPS"))
    )


def known_rate() -> matmul_rate.Rate | None:
    """This machine's rate: measured this session, else recorded by an earlier one (looked
    for once a session) with this PyTorch on this CPU."""
    if Runtime.matmul_rate is None and not Runtime.rate_looked_for:
        Runtime.rate_looked_for = True
        found = torch_found()
        Runtime.matmul_rate = matmul_rate.load(pytorch_root(), found[0] if found else None)
    return Runtime.matmul_rate


def run_settings(family: Family, settings: bpy.types.PropertyGroup, painter: bool = True) -> dict[str, object]:
    """The settings a run of ``family`` takes, as Generate decides them: the sidebar's per-model
    numbers where they were set for this family, else its published ones; the others the
    sidebar's (TRELLIS's colours only where it can paint: ``painter``); and how many photos of
    one object."""
    published = Options().for_family(family.settings)
    fits = settings.settings_family == family.name
    values = {}
    for name in (*family.uses, "colours"):
        setting = SETTINGS.get(name)
        if setting is None:
            continue
        own = hasattr(settings, name) and (fits or not setting.per_model)
        values[name] = getattr(settings, name) if own else getattr(published, name)
    if values.get("colours") == "trellis" and (family.makes_colours or not painter):
        values["colours"] = "photo"
    ticked = sum(image.openlrm_chosen for image in bpy.data.images) if settings.source == "IMAGES" else 0
    values["views"] = ticked if family.views and settings.one_object and ticked > 1 else 1
    return values


def cpu_estimate(
    family: Family, settings: bpy.types.PropertyGroup, precision: str, folder: Path | None = None,
    painter: bool = True,
) -> tuple[str, bool]:  # fmt: skip
    """The sidebar's words about a run's time on this CPU (a flow model's: ``estimate.estimated``),
    and whether it should offer to measure the CPU (the estimate is pending); ``folder``: the
    local model folder, ``painter``: whether TRELLIS's weights are here to colour a shape."""
    rate, key = known_rate(), estimate.rate_precision(precision)
    if Runtime.rate_measurement is not None:
        return "Timing this CPU's matrix products for the estimate...", False
    if rate is None or key not in rate.gflops:
        return f"On this CPU: the time estimate is pending until this machine's {key} speed is measured", True
    speed = rate.speed(key)
    if speed is None:
        return "This CPU has no bfloat16 arithmetic: runs in bfloat16 are refused here (choose float32)", False
    values = run_settings(family, settings, painter)
    seconds = estimate.run_seconds(family.name, values, speed, precision, folder)
    in_bfloat16 = ", bfloat16" if key == "bfloat16" else ""
    text = f"On this CPU about {duration(seconds)} ({_described(family, values, ', ')}{in_bfloat16})"
    draft = estimate.draft(family.name, values)
    if draft is not None:
        draft_seconds = estimate.run_seconds(family.name, draft, speed, precision, folder)
        text += f"; a draft of {_described(family, draft, ' at ')} about {duration(draft_seconds)}"
    text += ". A GPU takes seconds"
    single = rate.speed("float32") if key == "bfloat16" else None
    if single is not None:  # some PyTorch builds compute bfloat16 attention far slower than float32
        in_float32 = estimate.run_seconds(family.name, values, single, "float32", folder)
        if in_float32 < seconds:
            text += f". Here float32 is quicker: about {duration(in_float32)}"
    return text, False


def _described(family: Family, values: dict, joint: str) -> str:
    """A run's steps (and grid), as the estimate names them."""
    if "latent_steps" in values:  # TRELLIS: both stages' steps
        return f"{values['steps']} + {values['latent_steps']} steps"
    return f"{values['steps']} steps{joint}{values['resolution']}^3"
