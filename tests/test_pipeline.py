"""The one-call API: progress, cancellation, model cache, devices, mesh orientation, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from openlrm_blender.engine import STAGES, Cancelled, CancelToken, EmptyMeshError, EngineError, Options, runtime
from openlrm_blender.engine.geometry.density_grid import DensityGrid
from openlrm_blender.engine.geometry.extraction import marching_cubes
from openlrm_blender.engine.models.openlrm.triplane import OpenLRMDecoder
from openlrm_blender.engine.models.triplane_field import TriplaneField
from openlrm_blender.engine.pipeline import generate
from openlrm_blender.engine.runtime import pick_device, unload_models
from tests.conftest import TINY_GRID, TINY_SIZE


def tiny_options(tiny_dir, **changes) -> Options:
    settings = dict(weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, recenter=False)
    settings.update(changes)
    return Options(**settings)


def test_progress_runs_through_the_stages_in_order(tiny_dir):
    reports = []
    generate(tiny_dir / "input.png", tiny_options(tiny_dir), progress=lambda *report: reports.append(report))
    stages = [stage for stage, _, _ in reports]
    assert [stage for stage in STAGES if stage in stages] == sorted(set(stages), key=stages.index)
    # All but "sample" (OpenLRM samples nothing: test_triposg) and "surface" (only when asked
    # for: test_surface).
    for stage in (stage for stage in STAGES if stage not in ("sample", "surface")):
        fractions = [fraction for name, fraction, _ in reports if name == stage]
        assert fractions, stage
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, stage
    assert "sample" not in stages
    assert any("transformer layer 2/2" in message for _, _, message in reports)
    assert any(message == "marching cubes" for _, _, message in reports)
    # A local folder is read, not downloaded, and the messages say so.
    assert ("model", 0.0, f"finding the folder {tiny_dir}") in reports
    assert not any("download" in message.lower() for _, _, message in reports)


def test_cancel_from_another_thread_stops_within_one_chunk(small_model_dir):
    """The caller's thread cancels while the density grid is being filled: no chunk of the
    grid is reported after the one under way (the token is checked at every report)."""
    token = CancelToken()
    started = threading.Event()
    after_cancel = []
    outcome = []

    def on_progress(stage, fraction, message):
        if stage == "mesh":
            started.set()
            if token.cancelled:
                after_cancel.append(fraction)

    def run():
        try:
            generate(
                np.full((64, 64, 3), 128, dtype=np.uint8),
                Options(weights_dir=small_model_dir, remove_background=False, resolution=512, dense=True),
                progress=on_progress,
                cancel=token,
            )
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(600)
    token.cancel()
    worker.join()
    assert outcome == ["cancelled"]
    assert len(after_cancel) <= 1, after_cancel  # at most the report that was passing the check as it was set


def test_cancelled_before_start(tiny_dir):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate(tiny_dir / "input.png", tiny_options(tiny_dir), cancel=token)


def test_models_are_cached_between_calls(tiny_dir, monkeypatch):
    unload_models()
    loads = []
    real_load = runtime.load_model
    monkeypatch.setattr(runtime, "load_model", lambda *args: loads.append(args) or real_load(*args))
    first = generate(tiny_dir / "input.png", tiny_options(tiny_dir))
    second = generate(tiny_dir / "input.png", tiny_options(tiny_dir))
    assert len(loads) == 1
    np.testing.assert_array_equal(first.mesh.faces, second.mesh.faces)
    unload_models()
    generate(tiny_dir / "input.png", tiny_options(tiny_dir))
    assert len(loads) == 2


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match=r"CUDA was asked for but this PyTorch \(.*\) sees no CUDA GPU"):
            pick_device("cuda")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(dtype="int8"), "unknown precision 'int8'"),
        (dict(foreground_ratio=1.5), "foreground_ratio = 1.5 is out of range: use 0.05 to 1"),
        (dict(input_size=100), "input size must be a multiple of 14"),
        (dict(resolution=4), "resolution = 4 is out of range: use 8 to 1024"),
        (dict(camera_distance=0.0), "camera_distance = 0 is out of range: use 0.1 to 10"),
        (dict(textured=True, texture_size=32), "texture_size = 32 is out of range: use 64 to 8192"),
    ],
)
def test_bad_options(tiny_dir, change, message):
    with pytest.raises(EngineError, match=message):
        generate(tiny_dir / "input.png", tiny_options(tiny_dir, **change))


def test_unpublished_width_needs_an_input_size(tiny_dir):
    with pytest.raises(EngineError, match="has no published input size: give the input size"):
        generate(tiny_dir / "input.png", tiny_options(tiny_dir, input_size=0))


def test_no_surface_is_a_clear_error_with_the_right_advice(tiny_dir):
    """Everything below the threshold: lower it; everything above (threshold 0: the density is positive): raise it."""
    message = r"no surface: the density never crosses the threshold {} on .+ \(it ranges .+\); try a {} threshold$"
    with pytest.raises(EmptyMeshError, match=message.format(50, "lower")):
        generate(tiny_dir / "input.png", tiny_options(tiny_dir, threshold=50.0))
    with pytest.raises(EmptyMeshError, match=message.format(0, "higher")):
        generate(tiny_dir / "input.png", tiny_options(tiny_dir, threshold=0.0))


def whole_grid(values: np.ndarray) -> DensityGrid:
    return DensityGrid(values.astype(np.float32), (0, 0, 0), len(values))


# A triplane field's grid over [-1, 1]^3 (its positions need only the decoder's box).
UNIT_BOX = TriplaneField(OpenLRMDecoder(8), None)


def test_normals_point_outward():
    """A ball of high density: the mesh encloses positive volume (counter-clockwise from outside)."""
    axis = np.linspace(-1, 1, 48)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    vertices, faces = marching_cubes(whole_grid(4.0 - 2.0 * np.sqrt(x**2 + y**2 + z**2)), 3.0, UNIT_BOX)
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert volume == pytest.approx(4 / 3 * np.pi * 0.5**3, rel=0.02)


def test_frame_is_the_specs(tiny_dir):
    """A density blob placed at +Z in the grid comes out at +Z: no axis is swapped or flipped."""
    axis = np.linspace(-1, 1, 40)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    blob = 4.0 - 4.0 * np.sqrt((x - 0.1) ** 2 + (y + 0.2) ** 2 + (z - 0.5) ** 2)
    vertices, _ = marching_cubes(whole_grid(blob), 3.0, UNIT_BOX)
    np.testing.assert_allclose(vertices.mean(axis=0), [0.1, -0.2, 0.5], atol=0.02)


def test_bfloat16_is_close_to_float32_and_never_nan(tiny_dir, monkeypatch):
    """Reduced precision changes the result a little, and sampling stays finite (PyTorch's
    bfloat16 CPU sampler gives NaN at some points; sampling runs in float32). Its numbers
    are the same where the CPU only emulates bfloat16, which runs are refused for speed."""
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    exact = generate(tiny_dir / "input.png", tiny_options(tiny_dir, resolution=64))
    reduced = generate(tiny_dir / "input.png", tiny_options(tiny_dir, resolution=64, dtype="bfloat16"))
    assert np.isfinite(reduced.mesh.vertices).all() and np.isfinite(reduced.mesh.colours).all()
    assert abs(len(reduced.mesh.faces) - len(exact.mesh.faces)) < 0.2 * len(exact.mesh.faces)
    # Channels last, as the upsampler leaves them: the layout where the NaNs appeared.
    planes = torch.randn(1, 3, 64, 64, 32, generator=torch.Generator().manual_seed(0)).bfloat16()
    planes = planes.permute(0, 1, 4, 2, 3)
    axis = torch.linspace(-1.0, 1.0, 64)
    points = torch.stack(torch.meshgrid(axis, axis, axis[:8], indexing="ij"), dim=-1).reshape(1, -1, 3)
    samples = OpenLRMDecoder(32).sample_planes(planes, points.bfloat16())
    assert samples.dtype == torch.bfloat16 and torch.isfinite(samples).all()
