"""What a GPU or reduced precision changes, shown here on the CPU where the mechanism can be:
half precision's overflow, stage times that wait for the device, precisions a device runs
badly, Apple MPS's fallback, and the model process's memory between runs
(``scripts/device_check.sh`` measures the same on a real GPU)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from openlrm_blender.engine import EngineError, Options, pipeline, runtime
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.models.triposg.model import to_output_frame as triposg_frame
from openlrm_blender.engine.models.triposr.weights import load_model
from openlrm_blender.engine.progress import Stopwatch
from tests.conftest import REPO, SHARED, TINY_GRID, TINY_SIZE

TRIPOSR_VECTOR = SHARED / "vectors" / "triposr-tiny"


@torch.no_grad()
def test_a_density_past_half_precisions_range_stays_finite():
    """TripoSR's density is exp(raw - 1): in float16 that is inf from raw > 12, and an inf
    corner would snap the surface to grid points. The output functions run in float32."""
    model = load_model(TRIPOSR_VECTOR)
    decoder = model.decoder
    decoder.layers[-1].bias[0] += 20.0  # raw density about 20 everywhere: exp(19) > 65504
    planes = torch.randn(1, 3, model.config.triplane_dim, 8, 8)
    points = torch.rand(1, 500, 3) * 1.6 - 0.8
    exact, _ = decoder.query(planes, points)
    decoder.half()
    density, colour = decoder.query(planes.half(), points.half())
    assert density.dtype == torch.float32 and torch.isfinite(density).all() and torch.isfinite(colour).all()
    assert float(exact.min()) > 65504  # past float16's largest number
    np.testing.assert_allclose(density.numpy(), exact.numpy(), rtol=0.05)  # half precision's error, not inf


def test_every_stage_time_waits_for_the_device():
    """A GPU runs queued work after the call that queued it returns: the stopwatch waits for
    the device before each reading."""
    order = []
    stopwatch = Stopwatch({}, lambda: order.append("synchronise"))
    stopwatch.lap("encode")
    stopwatch.total()
    assert order == ["synchronise", "synchronise", "synchronise"]  # at the start, each lap, the total


def test_the_pipeline_waits_for_the_device_at_each_stage_and_layer(tiny_dir, monkeypatch):
    waits = []
    monkeypatch.setattr(pipeline, "synchronise", lambda device: waits.append(str(device)))
    reports = []
    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, recenter=False, device="cpu")
    result = pipeline.generate(tiny_dir / "input.png", options, progress=lambda *report: reports.append(report))
    layers = [report for report in reports if report[0] == "encode" and "transformer layer" in report[2]]
    stages = {"load", "preprocess", "encode", "mesh", "total"}
    assert stages <= set(result.timings) and set(waits) == {"cpu"}
    assert len(waits) >= len(layers) + len(stages)  # every layer's progress, every stage's time


@pytest.mark.parametrize("dtype", ["float16"])
def test_a_precision_the_cpu_runs_badly_is_refused_in_words(tiny_dir, tmp_path, capsys, dtype):
    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, device="cpu", dtype=dtype)
    with pytest.raises(EngineError, match="float16 is very slow on the CPU"):
        pipeline.generate(tiny_dir / "input.png", options)
    output = tmp_path / "x.ply"
    arguments = [str(tiny_dir / "input.png"), "-o", str(output), "--weights", str(tiny_dir), "--device", "cpu"]
    assert main([*arguments, "--dtype", dtype, "-q"]) == 1
    assert "error: " in capsys.readouterr().err and not output.exists()


@pytest.mark.parametrize(
    "script",
    [
        "from openlrm_blender.worker import server\nserver.main()",  # reads no run: stdin is empty
        "import runpy\ntry:\n    runpy.run_module('openlrm_blender.engine', run_name='__main__')\n"
        "except SystemExit:\n    pass",
    ],
    ids=["model process", "command line"],
)
def test_apple_mps_falls_back_to_the_cpu_for_what_it_lacks(script):
    """PyTorch reads PYTORCH_ENABLE_MPS_FALLBACK when it is imported: the model's process and
    the command line set it before importing it."""
    code = (
        f"import os, sys\nsys.argv = ['x', '--help']\n{script}\n"
        "print('FALLBACK', os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert "FALLBACK 1" in done.stdout + done.stderr, done.stdout + done.stderr  # the model process prints to stderr


def test_bfloat16_on_a_cpu_without_its_arithmetic_is_refused_in_words(tiny_dir, monkeypatch):
    """Emulated bfloat16 ran 6x slower than float32 on a Zen 3 EPYC (bench.py --dtype bfloat16)."""
    options = Options(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, device="cpu", dtype="bfloat16")
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    with pytest.raises(EngineError, match=r"this CPU has no bfloat16 arithmetic.*choose float32"):
        pipeline.generate(tiny_dir / "input.png", options)
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    assert len(pipeline.generate(tiny_dir / "input.png", options).mesh.faces) > 0


# --- on a CUDA GPU, where one is lent (skipped elsewhere) ---------------------------------

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here (scripts/device_check.sh measures one)"
)
# Each family's tiny vector, the options it was made with, its published mesh in our frame.
VECTORS = {
    "openlrm": ("tiny", lambda meta: dict(input_size=meta["source_size"], resolution=meta["grid_size"], recenter=False),
                lambda expected: (expected["mesh_vertices"], expected["mesh_faces"])),
    "triposr": ("triposr-tiny", lambda meta: dict(resolution=meta["grid"], threshold=meta["threshold"]),
                lambda expected: (expected["mesh_vertices"], expected["mesh_faces"])),
    "triposg": ("triposg-tiny", lambda meta: dict(resolution=meta["grid_points_per_axis"], tokens=meta["num_tokens"],
                                                  steps=meta["steps"], seed=meta["seed"],
                                                  guidance=meta["guidance_scale"]),
                lambda expected: (triposg_frame(expected["mcubes_vertices"]), expected["mcubes_faces"])),
}  # fmt: skip
# Vertices of the published mesh made on an H200 in float32 (TF32 off, the engine's own
# setting there) lay within 6e-5 of the CPU's: a few times that is allowed.
CUDA_VERTEX_TOLERANCE = 2e-4


@needs_cuda
@pytest.mark.parametrize("family", list(VECTORS))
def test_cuda_in_float32_gives_the_published_mesh(family):
    import json

    from scipy.spatial import cKDTree

    folder_name, settings, published = VECTORS[family]
    folder = SHARED / "vectors" / folder_name
    meta = json.loads((folder / "meta.json").read_text())
    options = Options(weights_dir=folder, device="cuda", dtype="float32", remove_background=False, **settings(meta))
    mesh = pipeline.generate(folder / "input.png", options).mesh
    with np.load(folder / "expected.npz") as expected:
        vertices, faces = published(expected)
    distance, match = cKDTree(vertices).query(mesh.vertices)
    print(f"{family} on CUDA: vertices within {distance.max():.2e} of the published mesh")
    assert distance.max() < CUDA_VERTEX_TOLERANCE and len(np.unique(match)) == len(vertices) == len(mesh.vertices)
    assert {tuple(sorted(face)) for face in match[mesh.faces].tolist()} == {
        tuple(sorted(face)) for face in faces.tolist()
    }


@needs_cuda
def test_cuda_float16_triposg_stays_finite_and_close_to_float32():
    """The published precision on a GPU: the same shape, up to half precision's rounding."""
    import json

    folder = SHARED / "vectors" / "triposg-tiny"
    meta = json.loads((folder / "meta.json").read_text())
    common = dict(weights_dir=folder, device="cuda", remove_background=False, **VECTORS["triposg"][1](meta))
    half = pipeline.generate(folder / "input.png", Options(dtype="float16", **common)).mesh
    full = pipeline.generate(folder / "input.png", Options(dtype="float32", **common)).mesh
    assert np.isfinite(half.vertices).all() and abs(len(half.faces) - len(full.faces)) < 0.05 * len(full.faces)


def test_the_device_check_runs_each_family_on_the_cpu(tmp_path):
    """The prepared check a lent GPU runs, tried on the CPU: every family's tiny vector against
    the published mesh (TRELLIS's tied quads allowed for), the flow models' real-size runs left
    to the GPU, a report that names the device."""
    import json

    done = subprocess.run(
        [sys.executable, "scripts/device_check.py", "--device", "cpu", "--vectors", str(SHARED / "vectors"),
         "--families", "triposg", "trellis", "--out", str(tmp_path / "check.json")],
        cwd=REPO, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["environment"]["device"] == "cpu"
    for family in ("triposg", "trellis"):
        parity = report[family]["parity"]
        assert parity["passed"] and "left to a GPU" in report[family]["real_size"], parity
    trellis = report["trellis"]["parity"]["cpu_against_published"]
    assert trellis["max_vertex_distance"] < 1e-4 and trellis["shared_triangle_share"] > 0.9999
