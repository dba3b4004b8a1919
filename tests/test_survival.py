"""Blender outlives any run: a test Blender (bpy in its own process) under a memory limit
runs Generate past the limit, and must report it in words, keep its scene, and run again."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bpy", reason="Blender as a Python module (bpy==4.2.*) is in requirements-dev.txt")

from openlrm_blender.engine import torch_available
from tests.conftest import REPO, reduced

SCRIPT = REPO / "tests" / "blender_scripts" / "survive_check.py"


def run_blender(engine: str, engine_arguments: dict, call: dict, preexec_fn) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, str(SCRIPT), engine, json.dumps(engine_arguments), json.dumps(call)]
    done = subprocess.run(
        command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, preexec_fn=preexec_fn
    )
    lines = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"Blender did not survive (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(lines[0])


def assert_survived(report: dict) -> None:
    assert report["scene_unchanged"], report
    assert not report["torch_in_blender"], "the model ran in Blender's own process"
    assert report["second"] == ["FINISHED"] and "Keep" in report["objects_after_second"], report


def memory_cgroup(limit_bytes: int) -> Path:
    """A memory cgroup (v1) under this process's own, or a skip where none can be made."""
    line = next((line for line in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in line), None)
    base = Path("/sys/fs/cgroup/memory")
    if line is None or not base.is_dir():
        pytest.skip("no cgroup v1 memory controller here")
    group = base / line.split(":", 2)[2].lstrip("/") / f"openlrm-test-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
    except OSError as error:
        pytest.skip(f"cannot make a memory cgroup here: {error}")
    return group


def test_the_system_killing_the_model_for_memory_leaves_blender_and_the_scene(tmp_path):
    """The out-of-memory killer, for real: the worker takes memory until the cgroup's limit,
    and the kernel kills a process of the group; it must be the worker, never Blender."""
    group = memory_cgroup(1536 * 2**20)
    try:
        call = {"filepath": str(REPO / "examples" / "tiny" / "input.png")}
        report = run_blender(
            "tests.support.fake_engines:hog",
            {"limit_mb": 8192},
            call,
            lambda: (group / "cgroup.procs").write_text(str(os.getpid())),
        )
        failures = int((group / "memory.failcnt").read_text())
    finally:
        group.rmdir()
    print(report["error"])
    assert report["first"] == ["ERROR"] and failures > 0
    assert report["error"].startswith(
        "the model process was killed by the system (SIGKILL), most likely because memory ran out"
    )
    assert "Blender and the scene are unchanged" in report["error"]
    assert_survived(report)


@pytest.mark.skipif(not torch_available(), reason="the real pipeline needs PyTorch")
def test_the_real_pipeline_past_an_address_space_cap_leaves_blender_and_the_scene(tmp_path):
    """A grid of 1024 on a model whose field is dense everywhere needs over 4 GB at once; under
    a 3.5 GB address-space cap PyTorch's allocation fails in the worker."""
    from tests.support.random_models import save_random_model

    model = save_random_model(tmp_path / "model", reduced("small"), seed=3)
    call = {
        "filepath": str(REPO / "examples" / "tiny" / "input.png"),
        "weights_dir": str(model),
        "resolution": 1024,
        "recenter": False,
    }
    cap = 3584 * 2**20
    report = run_blender("-", {}, call, lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
    print(report["error"])
    assert report["first"] == ["ERROR"]
    assert report["error"].startswith("out of memory: the run needed more memory than was free"), report
    assert report["error"].endswith("; Blender and the scene are unchanged"), report
    assert "Traceback" not in report["error"] and "alloc_cpu" not in report["error"]
    assert_survived(report)
