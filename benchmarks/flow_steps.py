"""The flow models in the benchmark (TripoSG; TRELLIS's two stages): each step timed between
the progress reports that end it, against its floor (its arithmetic at the matrix-product
peak measured beside the run), and the whole run against the estimate the sidebar gives
(``engine.models.estimate``) at that peak.

TRELLIS's second stage costs what its object's voxels cost: the voxels its first stage found
are recorded as the run hands them to stage 2, and its floor counts their neighbours and
tokens, not a typical object's."""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from openlrm_blender.engine import Options
from openlrm_blender.engine.models import estimate
from openlrm_blender.engine.models.trellis import cost
from openlrm_blender.engine.models.trellis import model as trellis_model
from openlrm_blender.engine.models.trellis.config import TrellisConfig
from openlrm_blender.engine.models.trellis.sparse import Level
from openlrm_blender.engine.models.triposg import work
from openlrm_blender.engine.pipeline import generate

FLOWS = ("triposg", "trellis")
# "step 3 of 50" (TripoSG), "structure step 3 of 25" and "latent step 3 of 25" (TRELLIS).
STEP_WORDS = re.compile(r"^(structure step|latent step|step) (\d+) of (\d+)")
# Each flow family's stages: the figures' prefix, and the table's label.
STAGES = {"triposg": (("step", "flow step"),),
          "trellis": (("structure_step", "structure step"), ("latent_step", "latent step"))}  # fmt: skip


def timed_run(image: Path, options: Options, peak: Callable[[], float]) -> tuple:
    """One run with the weights loaded; by stage, when each flow step ended and the next began,
    and the matrix-product ``peak`` measured between them (this machine's speed wanders by
    10-30% within minutes: each stage's floor is measured beside its own steps); and the
    seconds those measurements took, which the run's total leaves out."""
    ended: dict[str, list[tuple[int, float, float]]] = {}
    peaks: dict[str, list[float]] = {}

    def progress(stage: str, fraction: float, message: str) -> None:
        words = STEP_WORDS.match(message) if stage == "sample" else None
        if words:
            end = time.perf_counter()
            peaks.setdefault(words[1], []).append(peak())
            ended.setdefault(words[1], []).append((int(words[2]), end, time.perf_counter()))

    result = generate(image, options, progress=progress)
    measuring = sum(began - end for stage in ended.values() for _, end, began in stage)
    result.timings["total"] -= measuring
    return result, ended, peaks


def sampled_options(family: str, options: Options, steps: int) -> Options:
    """A run of ``steps`` flow steps in every stage."""
    return dataclasses.replace(options, steps=steps, **({"latent_steps": steps} if family == "trellis" else {}))


@contextmanager
def voxels_recorded() -> Callable[[], cost.Voxels | None]:
    """The voxels TRELLIS's second stage runs on, as it takes them (None before a run)."""
    seen: list[torch.Tensor] = []

    class Recorded(Level):
        def __init__(self, coords: torch.Tensor) -> None:
            super().__init__(coords)
            seen.append(coords.cpu())

    trellis_model.Level = Recorded
    try:
        yield lambda: voxel_counts(seen[-1]) if seen else None
    finally:
        trellis_model.Level = Level


def voxel_counts(coords: torch.Tensor) -> cost.Voxels:
    """What stage 2's arithmetic reads of an object's voxels."""
    level = Level(coords)
    tokens, _ = level.halved()
    pairs = lambda level: sum(len(rows) for rows, _ in level.neighbours.pairs)  # noqa: E731
    return cost.Voxels(len(coords), pairs(level), len(tokens.coords), pairs(tokens))


def mean_step_seconds(ended: list[tuple[int, float, float]]) -> tuple[float | None, list[int]]:
    """The mean seconds of the steps timed (each from the report before it to its own), and
    which steps they were."""
    if len(ended) < 2:
        return None, []
    seconds = sum(end - began for (_, _, began), (_, end, _) in itertools.pairwise(ended))
    return seconds / (ended[-1][0] - ended[0][0]), list(range(ended[0][0], ended[-1][0]))


def step_figures(family: str, folder: Path, options: Options, ended: dict, peaks: dict,
                 voxels: cost.Voxels | None) -> dict:  # fmt: skip
    """Each stage's step seconds and GFLOP (the mean of the steps timed) and the best peak
    measured beside them; ``options`` with the family's published settings filled in."""
    if family == "triposg":
        seconds, _ = mean_step_seconds(ended.get("step", []))
        return {"step_seconds": seconds, "step_gflop": work.step_flop(options.tokens, options.guidance).total / 1e9,
                "step_peak_gflops": max(peaks.get("step", [0.0]))}  # fmt: skip
    config = TrellisConfig.load(folder)
    figures = {"voxels": voxels.count, "tokens": voxels.tokens,
               "neighbours_per_voxel": voxels.neighbour_pairs / voxels.count}  # fmt: skip
    for stage, sampler, steps, guidance, per_call in (
        ("structure", config.structure_sampler, options.steps, options.guidance,
         cost.structure_call_flop(config.structure_flow).total),
        ("latent", config.latent_sampler, options.latent_steps, options.latent_guidance,
         cost.latent_call_flop(config.latent_flow, voxels).total),
    ):  # fmt: skip
        seconds, timed = mean_step_seconds(ended.get(f"{stage} step", []))
        calls = cost.calls(sampler, steps, guidance)
        figures[f"{stage}_step_seconds"] = seconds
        figures[f"{stage}_step_gflop"] = sum(calls[step] for step in timed) / max(len(timed), 1) * per_call / 1e9
        figures[f"{stage}_step_peak_gflops"] = max(peaks.get(f"{stage} step", [0.0]))
    return figures


def estimate_figures(family: str, folder: Path, options: Options, peaks: dict, attention: float, precision: str,
                     run: float, voxels: cost.Voxels | None) -> dict:  # fmt: skip
    """The sidebar's estimate of this run (a typical object's voxels for TRELLIS, and this
    object's) at the mean of the products' peaks measured during it and the ``attention``
    rate measured beside it, the rates the add-on would have timed then; against the run's
    seconds with the weights loaded."""
    settings = {name: getattr(options, name) for name in ("steps", "guidance", "tokens", "resolution",
                                                          "latent_steps", "latent_guidance", "colours")}  # fmt: skip
    speed = estimate.Speed(statistics.mean(value for stage in peaks.values() for value in stage), attention)
    typical = estimate.run_seconds(family, settings, speed, precision, folder)
    figures = {"run_mean_peak_gflops": speed.products, "attention_gflops": attention, "estimate_seconds": typical,
               "run_seconds": run, "estimate_over_run": typical / run}  # fmt: skip
    if voxels is not None:
        own = estimate.run_seconds(family, settings, speed, precision, folder, voxels)
        figures.update(estimate_own_voxels_seconds=own, estimate_own_voxels_over_run=own / run)
    return figures


def _stage_rows(results: list[dict], row: Callable[[str, list], None], prefix: str, label: str) -> None:
    seconds, gflop = f"{prefix}_seconds", f"{prefix}_gflop"

    def shown(form: Callable[[dict], str]) -> list[str]:
        return [form(r) if r.get(seconds) else "-" for r in results]

    def floor(r: dict) -> float:  # at the peak measured beside the stage's steps
        return r[gflop] / r[f"{prefix}_peak_gflops"]

    row(label, shown(lambda r: f"{r[seconds]:.2f}"))
    row("  step GFLOP", shown(lambda r: f"{r[gflop]:,.0f}"))
    row("  peak beside (GFLOP/s)", shown(lambda r: f"{r[f'{prefix}_peak_gflops']:.0f}"))
    row("  step floor at peak", shown(lambda r: f"{floor(r):.2f}"))
    row("  step / floor", shown(lambda r: f"{r[seconds] / floor(r):.2f}x"))


def table_rows(results: list[dict], row: Callable[[str, list], None]) -> None:
    """The flow models' rows: each stage's step against its floor, the estimate against the run."""
    for prefix, label in (stage for family in FLOWS for stage in STAGES[family]):
        if any(f"{prefix}_gflop" in r for r in results):
            _stage_rows(results, row, prefix, label)
    if any("voxels" in r for r in results):
        counts = [f"{r['voxels']:,} ({r['tokens']:,})" if "voxels" in r else "-" for r in results]
        row("TRELLIS voxels (tokens)", counts)
    if any("estimate_seconds" in r for r in results):
        for key, label, form in (
            ("run_seconds", "run (weights loaded)", "{:.1f}"),
            ("run_mean_peak_gflops", "  its mean peak (GFLOP/s)", "{:.0f}"),
            ("attention_gflops", "  attention's rate (GFLOP/s)", "{:.0f}"),
            ("estimate_seconds", "  sidebar's estimate at it", "{:.1f}"),
            ("estimate_over_run", "  estimate / run", "{:.2f}"),
            ("estimate_own_voxels_over_run", "  on its own voxels / run", "{:.2f}"),
        ):
            if any(key in r for r in results):
                row(label, [form.format(r[key]) if key in r else "-" for r in results])
