"""Stage times and peak memory of image -> mesh, against the dense published recipe.

    python benchmarks/bench.py [--models base large triposr triposg] [--grids 128 256 384] [--compare-dense]
                               [--textures 0 1024 2048] [--faces 50000] [--steps 2]
                               [--device auto] [--dtype auto] [--json FILE]

The real weights are not needed: models with the real small/base/large key layouts of
OpenLRM, and TripoSR's, are made once (random weights shaped into one compact object of
about 10% of the volume, so mesh extraction sees what a trained model gives) and kept on
disk in the file layout of their Hub repositories. The table also gives the encoder's
floating-point work (PyTorch's FLOP counter) over the device's matrix-product peak in the
run's precision, measured just before and after the timed runs (the better of the two):
the fastest the encoder could be here then. Each (model, grid) runs in a fresh process, so
its peak memory is its own: the first call loads the weights, the better of the next two is
reported with the weights loaded, and ``--compare-dense`` then runs the published per-point
recipe on the same image. ``--textures`` adds textured runs (floaters dropped,
simplified to ``--faces``, UV-unwrapped, baked at each size), each in its own process.
With ``--dtype bfloat16``/``float16`` the float32 run is
made too and the difference reported (largest density difference on a 128^3 grid, 48^3
for TripoSG, whose every value costs 30 MFLOP; share of points that change side; how far
the mesh moves).

TripoSG (``--models triposg``; a random model of the real size, 7.9 GB, its field shaped into
one compact object) runs ``--steps`` flow steps (a few are enough to time one; the published
50 take most of an hour on a CPU): the table and ``--json`` give each flow step's seconds
against its floor (its arithmetic, guidance's double batch included, at the run's peak in
its precision), and the field's values the coarse-to-fine grid computed against the dense grid's.
TRELLIS (``--models trellis``; a random model of the real size, 4 GB of float16 and float32,
its first stage steered to a typical object's surface: benchmarks/trellis_object.py) runs
``--steps`` steps in each stage, once (it has no grid): each stage's step against its floor
(``structure_step_*``, ``latent_step_*``; stage 2's on the voxels stage 1 found). For both,
the run (weights loaded) against the sidebar's estimate at the run's peak: at the draft's
settings, ``--models triposg --grids 256 --steps 10`` and ``--models trellis --steps 10``
(``--runs 1`` times one run instead of the better of two).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import flow_steps, trellis_object
from openlrm_blender.engine import Options
from openlrm_blender.engine.models.openlrm.config import ModelConfig
from openlrm_blender.engine.models.registry import family_of_folder
from openlrm_blender.engine.models.trellis import cost as trellis_cost
from openlrm_blender.engine.models.triposg import work
from openlrm_blender.engine.models.triposr.config import TripoSRConfig
from openlrm_blender.engine.pipeline import generate, model_output
from openlrm_blender.engine.runtime import DTYPES, attention_gflops, matmul_gflops, pick_device, resolve_precision
from tests.support import random_triposg as triposg_models
from tests.support import random_triposr as triposr
from tests.support.random_models import PUBLISHED_CONFIGS, object_model, save_model

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openlrm-blender" / "bench-models"
# Table rows: (key in the figures, label).
STAGES = (
    ("load", "weights load"),
    ("preprocess", "image preparation"),
    ("encode", "encoder + transformer"),
    ("sample", "flow steps"),
    ("mesh", "mesh (all its steps)"),
    ("density", "density grid"),
    ("mcubes", "marching cubes"),
    ("flexicubes", "FlexiCubes"),
    ("colours", "vertex colours"),
    ("camera", "camera fit"),
    ("fill", "camera fit + photo fill"),
    ("cleanup", "clean-up (floaters)"),
    ("simplify", "simplify"),
    ("unwrap", "UV unwrap"),
    ("bake", "bake texture"),
    ("photo", "photo texture"),
    ("total", "total (weights loaded)"),
)
SURFACE_STAGES = ("cleanup", "simplify", "unwrap", "bake", "photo")


# The dense grid on which a reduced precision's field is compared with float32's, per family.
PRECISION_GRID = {"triposg": 48}
MODELS = (*PUBLISHED_CONFIGS, "triposr", "triposg", "trellis")  # OpenLRM's sizes, then the others


def model_folder(size: str, cache: Path) -> Path:
    """The benchmark model of this size (or TripoSR), made on first use."""
    folder = cache / f"{size}-object-seed0"
    if not any(folder.glob("**/*.safetensors")):
        print(f"making the {size} benchmark model in {folder} ...", file=sys.stderr)
        if size == "triposr":
            triposr.save_model(triposr.object_model(TripoSRConfig.from_yaml(triposr.PUBLISHED_CONFIG)), folder)
        elif size == "triposg":
            triposg_models.save_model(triposg_models.object_model(triposg_models.write_configs(folder)), folder)
        elif size == "trellis":
            trellis_object.save_object_model(folder)
        else:
            raw = PUBLISHED_CONFIGS[size]
            save_model(object_model(ModelConfig.from_dict(raw), seed=0), folder, raw)
    return folder


def matmul_peak_gflops(device: torch.device, dtype: str, size: int = 2048, repeats: int = 5) -> float:
    """The device's matrix-product rate now in the run's precision (bfloat16 runs 2.3x
    float32's on an AVX-512 BF16 CPU): the best of a few 2048^3 products, timed as the
    add-on's model process times it for the sidebar's estimate."""
    return matmul_gflops(dtype, str(device), size, repeats)


def encoder_gflop(folder: Path, image: Path, options: Options) -> float:
    """Floating-point work of one encode (matrix products, attention and convolutions),
    counted by PyTorch. Its counter knows the GPU attention kernels but not the CPU's, which
    does 30% of TripoSR's work: left out, the floor was 2,096 GFLOP instead of 2,960."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    dtype = resolve_precision(options.dtype, pick_device(options.device), family_of_folder(folder))
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    )
    with counter:
        model_output(image, dataclasses.replace(options, weights_dir=folder), dtype)
    return counter.get_total_flops() / 1e9


def test_image(path: Path) -> Path:
    """A 1024 x 1024 RGBA photo stand-in: a shaded disc on a transparent background."""
    from PIL import Image

    axis = np.linspace(-1.0, 1.0, 1024)
    x, y = np.meshgrid(axis, axis)
    radius = np.sqrt(x**2 + y**2)
    rgb = np.stack([0.5 + 0.5 * x, 0.5 + 0.5 * y, 1.0 - radius / 2], axis=-1).clip(0, 1)
    alpha = (radius < 0.7).astype(np.float64)
    pixels = (np.concatenate([rgb, alpha[..., None]], axis=-1) * 255).astype(np.uint8)
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mesh_distance(moved: np.ndarray, reference: np.ndarray, resolution: int) -> dict[str, float]:
    """How far the vertices of one mesh lie from the other's, in grid steps."""
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(reference).query(moved)
    step = 2.0 / (resolution - 1)
    return {
        "mean_vertex_shift_steps": float(distance.mean() / step),
        "max_vertex_shift_steps": float(distance.max() / step),
    }


def precision_effect(folder: Path, image: Path, options: Options, reduced_mesh) -> dict:
    """The reduced-precision run against float32 on the same image."""
    from openlrm_blender.engine.geometry.density_grid import dense_density_grid

    family = family_of_folder(folder)
    options = options.for_family(family.settings)
    reference = generate(image, dataclasses.replace(options, dtype="float32"))
    device = pick_device(options.device)
    grids = {}
    for dtype in (resolve_precision(options.dtype, device, family), "float32"):
        field = model_output(image, options, dtype).surface
        grids[dtype] = dense_density_grid(field, PRECISION_GRID.get(family.name, 128), lambda f, m: None).values
    reduced, exact = grids[resolve_precision(options.dtype, device, family)], grids["float32"]
    return {
        "max_density_difference": float(np.abs(reduced - exact).max()),
        "side_changed_share": float(((reduced > options.threshold) != (exact > options.threshold)).mean()),
        "n_faces_float32": len(reference.mesh.faces),
        **mesh_distance(reduced_mesh.vertices, reference.mesh.vertices, options.resolution),
    }


def run_one(size: str, resolution: int, texture_size: int, args: argparse.Namespace) -> dict:
    """One (model, grid): figures for the table, measured in this process."""
    folder = model_folder(size, args.cache)
    family = family_of_folder(folder)
    with tempfile.TemporaryDirectory() as scratch:
        image = test_image(Path(scratch) / "input.png")
        options = Options(
            weights_dir=folder, resolution=resolution or None, device=args.device, dtype=args.dtype,
            remove_background=False,
        )  # fmt: skip
        if texture_size:
            options = dataclasses.replace(
                options, min_piece=0.01, faces=args.faces, textured=True, texture_size=texture_size
            )
        first = options
        if family.sampled:  # a few flow steps time one; the first run only pages the weights in
            options = flow_steps.sampled_options(size, options, args.steps)
            first = flow_steps.sampled_options(size, options, 1)
            first = dataclasses.replace(first, resolution=64) if "resolution" in family.uses else first
        cold = generate(image, first)
        # The peak beside the timed runs, and the better of two: this machine's speed wanders
        # by 10-30% within minutes, and a floor measured minutes away moved the ratios as much.
        device = pick_device(options.device)
        precision = resolve_precision(options.dtype, device, family)
        peak = matmul_peak_gflops(device, precision)
        beside = lambda: matmul_peak_gflops(device, precision, repeats=3)  # noqa: E731 (between flow steps)
        with flow_steps.voxels_recorded() as voxels:
            runs = [flow_steps.timed_run(image, options, beside) for _ in range(args.runs)]
        warm, ended, peaks = min(runs, key=lambda run: run[0].timings["total"])
        peak = max(peak, matmul_peak_gflops(device, precision), *(value for stage in peaks.values() for value in stage))
        stages = {key: warm.timings[key] for key, _ in STAGES if key in warm.timings}
        stages["load"] = cold.timings["load"]
        # The weights are memory-mapped: the first run pages them in (and warms kernels up); a
        # flow model's first run is a shorter one (one step, a small grid): nothing to compare.
        run_seconds = [run.timings["encode"] + run.timings["mesh"] for run in (cold, warm)]
        first_run_extra = None if family.sampled else run_seconds[0] - run_seconds[1]
        flops = {"triposg": work.encoder_flop, "trellis": trellis_cost.encoder_flop}
        figures = {
            "encoder_gflop": flops[size]().total / 1e9 if size in flops else encoder_gflop(folder, image, options),
            "matmul_peak_gflops": peak,
            "model": size,
            "grid": resolution,
            "texture_size": texture_size,
            "device": warm.device,
            "dtype": precision,
            "stages": stages,
            "timings": warm.timings,  # every stage the run lapped, the table's and the rest
            "first_run_extra_s": first_run_extra,
            "weights_mb": sum(path.stat().st_size for path in folder.glob("**/*.safetensors")) / 2**20,
            "peak_rss_mb": peak_rss_mb(),
            "n_vertices": len(warm.mesh.vertices),
            "n_faces": len(warm.mesh.faces),
        }
        if family.sampled:  # each step timed between its progress reports (the device synchronised)
            used = options.for_family(family.settings | family.recipe().published_settings(folder))
            seen = voxels()
            figures.update(
                steps=args.steps, **flow_steps.step_figures(size, folder, used, ended, peaks, seen),
                **flow_steps.estimate_figures(size, folder, used, peaks, attention_gflops(precision, str(device)),
                                              precision, warm.timings["total"], seen),
            )  # fmt: skip
        if "queries" in warm.facts:  # TripoSG's coarse-to-fine grid
            figures.update(decoder_queries=int(warm.facts["queries"]), dense_queries=resolution**3,
                           camera_overlap=warm.facts["camera_overlap"])  # fmt: skip
        if warm.device.startswith("cuda"):
            figures["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if args.compare_dense:
            dense = generate(image, dataclasses.replace(options, dense=True))
            figures["dense_stages"] = {key: dense.timings[key] for key in ("density", "mcubes", "colours")}
            figures["same_mesh_as_dense"] = bool(
                np.array_equal(dense.mesh.faces, warm.mesh.faces)
                and np.abs(dense.mesh.vertices - warm.mesh.vertices).max() <= 1e-4
            )
        # A field's values against float32's on a dense grid (TRELLIS makes a cube grid of its own
        # voxels, which a reduced precision may find otherwise: no grid to compare on).
        if args.dtype not in ("auto", "float32") and "resolution" in family.uses:
            figures["precision"] = precision_effect(folder, image, options, warm.mesh)
    return figures


def print_table(results: list[dict]) -> None:
    columns = [
        r["model"] + (f" {r['grid']}" if r["grid"] else "") + (f" tex{r['texture_size']}" if r["texture_size"] else "")
        for r in results
    ]
    width = max(12, *(len(c) for c in columns)) + 2
    precisions = sorted({r["dtype"] for r in results})
    print(f"\n{results[0]['device']}, {' and '.join(precisions)}; seconds unless marked")
    peaks = [r["matmul_peak_gflops"] for r in results]
    print(f"matmul peak beside each run in its precision: {min(peaks):.0f}-{max(peaks):.0f} GFLOP/s "
          "(2048^3 products, best of 5)")  # fmt: skip
    print(f"{'':26}" + "".join(f"{c:>{width}}" for c in columns))

    def row(label: str, values: list) -> None:
        print(f"{label:26}" + "".join(f"{v:>{width}}" for v in values))

    for key, label in STAGES:
        if any(key in r["stages"] for r in results):
            row(label, [f"{r['stages'][key]:.2f}" if key in r["stages"] else "-" for r in results])
        if key == "load":
            extra = [f"{r['first_run_extra_s']:.2f}" if r["first_run_extra_s"] is not None else "-" for r in results]
            row("  first run's extra", extra)
    row("  matmul peak (GFLOP/s)", [f"{r['matmul_peak_gflops']:.0f}" for r in results])
    row("  encoder GFLOP", [f"{r['encoder_gflop']:.0f}" for r in results])
    triplanes = [r for r in results if "estimate_seconds" not in r]
    # The encoder's seconds at the peak measured beside its run.
    floor = lambda r: r["encoder_gflop"] / r["matmul_peak_gflops"]  # noqa: E731
    if triplanes:
        row("  encoder floor at peak", [f"{floor(r):.2f}" if r in triplanes else "-" for r in results])
        ratio = lambda key, over: [  # noqa: E731
            f"{r['stages'][key] / over(r):.2f}x" if r in triplanes else "-" for r in results
        ]
        row("  encoder / floor", ratio("encode", floor))
        row("  run / floor", ratio("total", floor))
        row("  run / encoder", ratio("total", lambda r: r["stages"]["encode"]))
    flow_steps.table_rows(results, row)  # the flow models' steps against their floor, the estimate against the run
    if any("decoder_queries" in r for r in results):  # TripoSG's queries against the dense grid's
        queries = lambda form: [form(r) if "decoder_queries" in r else "-" for r in results]  # noqa: E731
        row("field values computed", queries(lambda r: f"{r['decoder_queries']:,}"))
        row("  dense grid's", queries(lambda r: f"{r['dense_queries']:,}"))
        row("  fewer than dense", queries(lambda r: f"{r['dense_queries'] / r['decoder_queries']:.0f}x"))
        row("photo fit (overlap)", queries(lambda r: f"{r['camera_overlap']:.2f}"))
    mesh_keys = ("density", "mcubes", "colours")
    meshes = [f"{sum(r['stages'][k] for k in mesh_keys):.2f}" if "mcubes" in r["stages"] else "-" for r in results]
    row("  mesh (grid+mc+colours)", meshes)
    if any(r["texture_size"] for r in results):
        row(
            "  surface (clean-up..bake)",
            [f"{sum(r['stages'].get(k, 0.0) for k in SURFACE_STAGES):.2f}" for r in results],
        )
    if all("dense_stages" in r for r in results):
        for key in mesh_keys:
            row(f"dense {key}", [f"{r['dense_stages'][key]:.2f}" for r in results])
        row(
            "  mesh speed-up vs dense",
            [f"{sum(r['dense_stages'].values()) / sum(r['stages'][k] for k in mesh_keys):.1f}x" for r in results],
        )
        row("same mesh as dense", [str(r["same_mesh_as_dense"]) for r in results])
    row("peak RSS (MB)", [f"{r['peak_rss_mb']:.0f}" for r in results])
    row("  over weights (MB)", [f"{r['peak_rss_mb'] - r['weights_mb']:.0f}" for r in results])
    if all("peak_cuda_mb" in r for r in results):
        row("peak CUDA (MB)", [f"{r['peak_cuda_mb']:.0f}" for r in results])
    row("vertices", [str(r["n_vertices"]) for r in results])
    row("faces", [str(r["n_faces"]) for r in results])
    if all("precision" in r for r in results):
        for key in results[0]["precision"]:
            row(key.replace("_", " "), [f"{r['precision'][key]:.3g}" for r in results])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["base"], choices=MODELS)
    parser.add_argument("--grids", nargs="+", type=int, default=[128, 256, 384])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", *sorted(DTYPES)])
    parser.add_argument("--compare-dense", action="store_true", help="also time the dense published recipe")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the benchmark models are kept")
    parser.add_argument("--json", type=Path, help="write the figures here as a JSON list")
    parser.add_argument(
        "--textures", nargs="+", type=int, default=[0], help="texture sizes to bake (0: vertex colours; default 0)"
    )
    parser.add_argument("--faces", type=int, default=50000, help="face budget of the textured runs (default 50000)")
    parser.add_argument(
        "--steps", type=int, default=2, help="flow steps per run, in each stage (default 2: enough to time one)"
    )
    parser.add_argument("--runs", type=int, default=2, help="timed runs with the weights loaded; the faster is kept")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "GRID", "TEXTURE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), int(args.one[2]), args)))
        return 0
    results = []
    for size in args.models:
        model_folder(size, args.cache)
        for resolution in [0] if size == "trellis" else args.grids:  # TRELLIS has no grid
            for texture_size in args.textures:
                command = [sys.executable, __file__, "--one", size, str(resolution), str(texture_size)]
                command += ["--device", args.device, "--dtype", args.dtype, "--cache", str(args.cache)]
                command += ["--faces", str(args.faces), "--steps", str(args.steps), "--runs", str(args.runs)]
                command += ["--compare-dense"] if args.compare_dense else []
                print(f"{size} at grid {resolution or '-'}, texture {texture_size or 'none'} ...", file=sys.stderr)
                run = subprocess.run(command, check=False, capture_output=True, text=True)
                if run.returncode:
                    print(run.stderr, file=sys.stderr)
                    return run.returncode
                results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"runs": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
