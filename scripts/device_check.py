"""One prepared check of the engine on a device (a lent GPU, or the CPU to try it), written
as a JSON report: versions and the device; per model family, parity on the device against
the CPU in float32 (the engine's mesh, and the planes with TF32 off and on; and the CPU
against the published vector),
float16/bfloat16 finiteness and change against float32, warm stage times with the device
synchronised at several resolutions, peak allocated and reserved memory and what an idle
model process keeps; per family and resolution the network's seconds, the rest's and the
network's share of the run (``network_share``, summed up at the end); and the
out-of-memory sentence for a huge allocation.

    python scripts/device_check.py [--device auto] [--vectors DIR] [--sizes 256 384 512] [--out FILE]

It needs no network: the tiny vectors (``--vectors``, the shared folder's ``vectors``) and
random models of the real sizes, made here, shaped into one compact object. Each section's
failure is recorded in the report, and the others still run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks import flow_steps
from benchmarks.bench import matmul_peak_gflops, model_folder, test_image
from openlrm_blender.engine import EngineError, Options
from openlrm_blender.engine.errors import out_of_memory_message
from openlrm_blender.engine.models.cube_grid import CubeGrid
from openlrm_blender.engine.models.triposg.model import to_output_frame as triposg_frame
from openlrm_blender.engine.pipeline import generate, model_output
from openlrm_blender.engine.runtime import free_cached_memory, pick_device, unload_models

# Per family: its tiny vector's folder, the options the vector was made with (from its
# meta.json; TRELLIS's steps and guidance are its pipeline.json's, read by the run), the
# published mesh in our frame (from its expected.npz), the real-size benchmark model's name.
FAMILIES = {
    "openlrm": (
        "tiny", lambda meta: dict(input_size=meta["source_size"], resolution=meta["grid_size"], recenter=False),
        lambda expected: (expected["mesh_vertices"], expected["mesh_faces"]), "base",
    ),
    "triposr": (
        "triposr-tiny", lambda meta: dict(resolution=meta["grid"], threshold=meta["threshold"]),
        lambda expected: (expected["mesh_vertices"], expected["mesh_faces"]), "triposr",
    ),
    "triposg": (
        "triposg-tiny", lambda meta: dict(resolution=meta["grid_points_per_axis"], tokens=meta["num_tokens"],
                                          steps=meta["steps"], seed=meta["seed"], guidance=meta["guidance_scale"]),
        lambda expected: (triposg_frame(expected["mcubes_vertices"]), expected["mcubes_faces"]), "triposg",
    ),
    "trellis": (
        "trellis-tiny", lambda meta: dict(seed=TRELLIS_VECTOR_SEED),
        lambda expected: (expected["mesh_vertices"], expected["mesh_faces"]), "trellis",
    ),
}  # fmt: skip
TRELLIS_VECTOR_SEED = 1234  # its README's (it has no meta.json)
# The published triangles a family's CPU mesh must share: all, but TRELLIS's 4 of 209,428 on
# the other diagonal of a tied quad (spconv's 1x1 convolution, docs/models.md).
SHARED_TRIANGLES = {"trellis": 0.9999}
# Real-size runs left to a GPU: a flow step of TripoSG or TRELLIS takes a minute on a CPU
# (benchmarks/bench.py --models triposg trellis times them there).
GPU_ONLY = {"triposg", "trellis"}
NO_GRID = {"trellis"}  # its mesh is FlexiCubes' on its own voxels: timed once, not per grid
PARITY_VERTEX_TOLERANCE = 1e-4  # the CPU against the published vector, as the tests hold it
NETWORK_STAGES = ("encode", "sample")  # the model's own stages, as the run's timings name them


def timed(section: Callable[[], dict]) -> dict:
    """A section's figures with its seconds, or its error: one failing leaves the rest to run."""
    started = time.perf_counter()
    try:
        found = section()
    except Exception as error:  # noqa: BLE001 (a report, not a program: every failure is a finding)
        found = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=6)}
    found["seconds"] = round(time.perf_counter() - started, 2)
    return found


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def environment(device: torch.device) -> dict:
    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "fp32_matmul_tflops": round(
            matmul_peak_gflops(device, "float32", 4096 if device.type != "cpu" else 1024) / 1e3, 2
        ),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        found.update(
            name=properties.name,
            capability=f"{properties.major}.{properties.minor}",
            memory_gb=round(properties.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            tf32_matmul_tflops=None,
            bf16_matmul_tflops=round(matmul_peak_gflops(device, "bfloat16", 8192) / 1e3, 1),
            fp16_matmul_tflops=round(matmul_peak_gflops(device, "float16", 8192) / 1e3, 1),
        )
        set_tf32(True)
        found["tf32_matmul_tflops"] = round(matmul_peak_gflops(device, "float32", 8192) / 1e3, 1)
        set_tf32(False)
    return found


def mesh_of(image: Path, options: Options):
    return generate(image, options).mesh


def same_mesh(
    vertices: np.ndarray, faces: np.ndarray, reference_vertices: np.ndarray, reference_faces: np.ndarray
) -> dict:
    """Whether two meshes are the same whatever their order: every vertex matched to one of
    the other's, the triangles the same sets of corners."""
    from scipy.spatial import cKDTree

    distance, match = cKDTree(reference_vertices).query(vertices)
    one_to_one = len(np.unique(match)) == len(vertices) == len(reference_vertices)
    ours = {tuple(sorted(face)) for face in match[faces].tolist()}
    theirs = {tuple(sorted(face)) for face in reference_faces.tolist()}
    return {
        "vertices": len(vertices),
        "reference_vertices": len(reference_vertices),
        "max_vertex_distance": float(distance.max()),
        "same_triangles": bool(one_to_one and ours == theirs),
        "shared_triangle_share": len(ours & theirs) / max(len(theirs), 1),
    }


def encoded(folder: Path, image: Path, device: torch.device, dtype: str, options: Options) -> torch.Tensor:
    """What the model made of the image, on the CPU in float32: triplanes, a flow model's
    latents, or TRELLIS's cube grid (its points' positions and signed distances)."""
    surface = model_output(image, dataclasses.replace(options, weights_dir=folder, device=device.type), dtype).surface
    if isinstance(surface, CubeGrid):
        return torch.cat((surface.vertex_position, surface.vertex_sdf[:, None]), dim=1).float().cpu()
    return (surface.planes if hasattr(surface, "planes") else surface.latents).float().cpu()


def largest_difference(found: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest difference of two outputs; infinite where their shapes differ (TRELLIS's
    voxels found differently)."""
    return float((found - reference).abs().max()) if found.shape == reference.shape else float("inf")


def relative_difference(found: torch.Tensor, reference: torch.Tensor) -> float:
    """The difference's norm over the reference's; infinite where their shapes differ."""
    return float((found - reference).norm() / reference.norm()) if found.shape == reference.shape else float("inf")


def parity(name: str, vectors: Path, device: torch.device) -> dict:
    """The tiny vector: the CPU against the published mesh; the device (float32, TF32 off and
    on) against the CPU, planes and mesh."""
    folder_name, settings, published_mesh, _ = FAMILIES[name]
    folder = vectors / folder_name
    image = folder / "input.png"
    meta_file = folder / "meta.json"  # TRELLIS's vector has none: its run reads pipeline.json
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    options = Options(weights_dir=folder, remove_background=False, device="cpu", dtype="float32", **settings(meta))
    reference = mesh_of(image, options)
    with np.load(folder / "expected.npz") as expected:
        published = published_mesh(expected)
    found: dict = {"cpu_against_published": same_mesh(reference.vertices, reference.faces, *published)}
    cpu_planes = encoded(folder, image, torch.device("cpu"), "float32", options)
    if device.type != "cpu":
        # The engine's own run (float32 with TF32 off), then what TF32 would change.
        mesh = mesh_of(image, dataclasses.replace(options, device=str(device)))
        found["device"] = same_mesh(mesh.vertices, mesh.faces, reference.vertices, reference.faces)
        for tf32 in (False, True):
            set_tf32(tf32)
            unload_models()
            planes = encoded(folder, image, device, "float32", options)
            found[f"device_tf32_{'on' if tf32 else 'off'}_max_plane_difference"] = largest_difference(
                planes, cpu_planes
            )
        set_tf32(False)
    published_entry = found["cpu_against_published"]
    device_entry = found.get("device", {"same_triangles": True})
    shared = published_entry["shared_triangle_share"]
    published_triangles = published_entry["same_triangles"] or shared >= SHARED_TRIANGLES.get(name, 1)
    found["passed"] = bool(
        published_triangles and published_entry["max_vertex_distance"] <= PARITY_VERTEX_TOLERANCE
        and device_entry["same_triangles"]
    )  # fmt: skip
    unload_models()
    return found


def precisions(name: str, device: torch.device, models: Path, image: Path) -> dict:
    """The real-size random model in float16 and bfloat16 against float32 on the device."""
    folder = model_folder(FAMILIES[name][3], models)
    grid = {} if name in NO_GRID else {"resolution": 128}
    options = Options(weights_dir=folder, remove_background=False, device=str(device), **grid)
    options = flow_steps.sampled_options(name, options, 10)
    exact = encoded(folder, image, device, "float32", options)
    reference = mesh_of(image, options)
    found = {}
    for dtype in ("float16", "bfloat16"):
        unload_models()
        try:
            mesh = mesh_of(image, dataclasses.replace(options, dtype=dtype))  # a refusal comes first
            planes = encoded(folder, image, device, dtype, options)
        except EngineError as refused:  # a precision this device runs badly is refused in words
            found[dtype] = {"refused": str(refused)}
            continue
        found[dtype] = {
            "planes_finite": bool(torch.isfinite(planes).all()),
            "max_plane_difference": largest_difference(planes, exact),
            "relative_plane_difference": relative_difference(planes, exact),
            "faces": len(mesh.faces),
            "faces_float32": len(reference.faces),
        }
    unload_models()
    return found


def memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {}
    return {
        "peak_allocated_mb": round(torch.cuda.max_memory_allocated(device) / 2**20),
        "peak_reserved_mb": round(torch.cuda.max_memory_reserved(device) / 2**20),
    }


def network_share(timings: dict[str, float]) -> dict:
    """A run with the weights loaded (its total less the load) split into the network's
    seconds (the model's own stages) and the rest's (preparing the image, the density grid's
    bookkeeping and marching cubes, colours, the photo and the fill, finishing), and the
    network's share: on a GPU the rest should be at most half."""
    run = timings["total"] - timings.get("load", 0.0)
    network = sum(timings.get(stage, 0.0) for stage in NETWORK_STAGES)
    return {
        "run_seconds": round(run, 3),
        "network_seconds": round(network, 3),
        "rest_seconds": round(run - network, 3),
        "network_share": round(network / run, 3) if run > 0 else None,
    }


def shares(stage_times: dict) -> dict:
    """``network_share``'s figures of each timed resolution, for the report's summary."""
    keys = ("run_seconds", "network_seconds", "rest_seconds", "network_share")
    timed_sizes = {size: entry for size, entry in stage_times.items() if isinstance(entry, dict)}  # not "seconds"
    return {size: {key: entry[key] for key in keys} for size, entry in timed_sizes.items() if "run_seconds" in entry}


def stage_times(
    name: str, device: torch.device, models: Path, image: Path, sizes: list[int], steps: int | None
) -> dict:
    """Warm runs (weights loaded, a first run done) at each resolution (TRELLIS: once, keyed
    "voxels"), stage by stage; a flow model's at ``steps`` steps in each stage (None: its
    published steps; float16 on a GPU, its published precision), each stage's step timed
    between its progress reports."""
    folder = model_folder(FAMILIES[name][3], models)
    found = {}
    for size in ["voxels"] if name in NO_GRID else sizes:
        grid = {} if name in NO_GRID else {"resolution": size}
        options = Options(weights_dir=folder, remove_background=False, device=str(device), **grid)
        options = options if steps is None else flow_steps.sampled_options(name, options, steps)
        generate(image, options)  # weights loaded, kernels warmed
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        result, ended, _ = flow_steps.timed_run(image, options, peak=lambda: 0.0)
        entry = {key: round(value, 3) for key, value in result.timings.items()}
        entry.update(**network_share(result.timings), **memory(device), faces=len(result.mesh.faces), **result.facts)
        for stage, times in ended.items():  # "step", or "structure step" and "latent step"
            seconds, _ = flow_steps.mean_step_seconds(times)
            if seconds is not None:
                entry[f"{stage.replace(' ', '_')}_seconds"] = round(seconds, 4)
        if device.type == "cuda":
            entry["reserved_after_run_mb"] = round(torch.cuda.memory_reserved(device) / 2**20)
            free_cached_memory()
            entry["reserved_idle_mb"] = round(
                torch.cuda.memory_reserved(device) / 2**20
            )  # what Keep Model Loaded holds
        found[str(size)] = entry
    unload_models()
    return found


def out_of_memory(device: torch.device) -> dict:
    """The sentence a run that asks for far too much gets."""
    try:
        torch.empty(2**50, dtype=torch.uint8, device=device)
    except (RuntimeError, MemoryError) as error:
        return {"error_type": type(error).__name__, "sentence": out_of_memory_message(error), "raw": str(error)[:300]}
    return {"sentence": None, "raw": "a 1 PB allocation succeeded"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--vectors", type=Path, required=True, help="the shared folder's vectors")
    parser.add_argument("--models", type=Path, default=Path("build/device-models"), help="where the random models go")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 384, 512], help="resolutions to time")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--steps", type=int, help="flow steps per stage in the timed runs (default: published)")
    parser.add_argument("--out", type=Path, default=Path("build/device_check.json"))
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    set_tf32(False)
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": timed(lambda: environment(device))}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")

    with tempfile.TemporaryDirectory() as scratch:
        image = test_image(Path(scratch) / "input.png")
        for name in args.families:
            report[name] = {}
            sections = {
                "parity": partial(parity, name, args.vectors, device),
                "precision": partial(precisions, name, device, args.models, image),
                "stage_times": partial(stage_times, name, device, args.models, image, args.sizes, args.steps),
            }
            if device.type == "cpu" and name in GPU_ONLY:
                sections = {"parity": sections["parity"]}
                report[name]["real_size"] = "left to a GPU: a flow step takes a minute on a CPU"
            for section, run in sections.items():
                print(f"{name}: {section} ...", file=sys.stderr, flush=True)
                report[name][section] = timed(run)
                save()
    report["network_share"] = {name: shares(report[name].get("stage_times", {})) for name in args.families}
    report["out_of_memory"] = timed(lambda: out_of_memory(device))
    report["seconds"] = round(sum(entry.get("seconds", 0) for entry in _sections(report)), 1)
    save()
    failed = [name for name in args.families if not report[name]["parity"].get("passed")]
    print(json.dumps(report, indent=2))
    print(
        f"{args.out}: parity {'failed for ' + ', '.join(failed) if failed else 'passed for every family'}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def _sections(report: dict) -> list[dict]:
    found = [report["environment"], report["out_of_memory"]]
    for value in report.values():
        if isinstance(value, dict) and "parity" in value:
            found += [section for section in value.values() if isinstance(section, dict)]
    return found


if __name__ == "__main__":
    sys.exit(main())
