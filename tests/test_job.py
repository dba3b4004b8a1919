"""The worker process and its messages, without Blender: what a run sends and gets back,
and how a run that goes wrong ends."""

from __future__ import annotations

import io
import signal

import numpy as np
import pytest

from openlrm_blender.engine import Options
from openlrm_blender.engine.errors import MEMORY_ADVICE, device_failure_message, out_of_memory_message
from openlrm_blender.jobs import job
from openlrm_blender.jobs.job import Engine, Job
from openlrm_blender.worker import client
from openlrm_blender.worker.protocol import read_message, write_message
from tests.conftest import REPO

IMAGE = REPO / "examples" / "tiny" / "input.png"


def run_fake(name: str, image=IMAGE, **arguments) -> job.Status:
    run = Job(image, Options(), engine=Engine(f"tests.support.fake_engines:{name}", arguments), keep_worker=False)
    run.run()
    return run.poll()


def test_messages_round_trip_with_arrays_and_end_cleanly():
    stream = io.BytesIO()
    arrays = {
        "vertices": np.random.rand(1000, 3).astype(np.float32),
        "faces": np.arange(30, dtype=np.int32).reshape(10, 3),
    }
    write_message(stream, "result", arrays, device="cpu", timings={"total": 1.5})
    write_message(stream, "progress", stage="mesh", fraction=0.5, message="")
    stream.seek(0)
    kind, fields, received = read_message(stream)
    assert kind == "result" and fields == {"device": "cpu", "timings": {"total": 1.5}}
    for name, array in arrays.items():
        assert received[name].dtype == array.dtype
        np.testing.assert_array_equal(received[name], array)
    assert read_message(stream)[:2] == ("progress", {"stage": "mesh", "fraction": 0.5, "message": ""})
    assert read_message(stream) is None
    truncated = io.BytesIO(stream.getvalue()[:-5])
    read_message(truncated)
    assert read_message(truncated) is None  # a worker that died mid-message is an end, not an error


def test_what_the_model_prints_cannot_break_the_replies():
    status = run_fake("chatty")
    assert status.error is None and status.result is not None
    np.testing.assert_array_equal(status.result.mesh.faces, [[0, 1, 2]])


def test_pixels_travel_to_the_worker(tmp_path):
    record = tmp_path / "seen.json"
    pixels = np.random.rand(300, 200, 4).astype(np.float32)
    status = run_fake("record_options", image=pixels, path=str(record))
    assert status.result is not None
    assert '"shape": [300, 200, 4]' in record.read_text()


def test_cancel_before_the_worker_starts():
    run = Job(IMAGE, Options(), engine=Engine("tests.support.fake_engines:stuck"), keep_worker=False)
    run.cancel()
    run.run()
    assert run.poll().cancelled and run.poll().stage == "startup"  # the stuck call never began
    assert run._process.process.wait(timeout=120) == -signal.SIGKILL


@pytest.mark.parametrize(
    "error, figure",
    [
        (MemoryError(), ""),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: not enough memory: "
                "you tried to allocate 4294967296 bytes. can't allocate memory"
            ),
            " (4.0 GB asked for at once)",
        ),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), " (2.0 GB asked for at once)"),
        (RuntimeError("CUDA out of memory. Tried to allocate 512.00 MiB"), " (0.5 GB asked for at once)"),
        # Apple MPS's wording, in MB.
        (
            RuntimeError(
                "MPS backend out of memory (MPS allocated: 17.21 GB, other allocations: 1.02 GB, max allowed: "
                "18.13 GB). Tried to allocate 1024.00 MB on private pool."
            ),
            " (1.0 GB asked for at once)",
        ),
        # cuBLAS's and cuDNN's own allocation failures.
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), ""),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), ""),
        (type("OutOfMemoryError", (RuntimeError,), {})("allocation on device"), ""),  # PyTorch's own type, by name
    ],
)
def test_allocation_failures_are_said_in_words(error, figure):
    message = out_of_memory_message(error)
    assert message == f"out of memory: the run needed more memory than was free{figure}; {MEMORY_ADVICE}"


def test_other_errors_are_not_called_out_of_memory():
    assert out_of_memory_message(RuntimeError("shape mismatch")) is None
    assert out_of_memory_message(RuntimeError("CUDA error: an illegal memory access was encountered")) is None


def test_a_gpu_fault_is_said_in_words_and_the_next_run_gets_a_fresh_worker(tmp_path):
    """A failed CUDA kernel leaves the process's GPU unusable: the worker says so and ends,
    and the next run starts a new one (not the same error again)."""
    first, second = tmp_path / "first", tmp_path / "second"
    run = Job(IMAGE, Options(), engine=Engine("tests.support.fake_engines:gpu_fails", {"marker": str(first)}))
    run.run()
    status = run.poll()
    assert status.error_kind == "DeviceFailure", status
    assert status.error.startswith("the GPU failed (CUDA error: an illegal memory access was encountered); the model's")
    assert "choose the CPU as the device" in status.error and "Blender and the scene are unchanged" in status.error
    assert client._idle is None and not run._process.alive
    again = Job(IMAGE, Options(), engine=Engine("tests.support.fake_engines:gpu_fails", {"marker": str(second)}))
    again.run()
    assert first.read_text() != second.read_text()  # another process
    assert device_failure_message(RuntimeError("shape mismatch")) is None


def test_the_worker_hands_the_gpu_allocators_cache_back_after_each_run(monkeypatch):
    """Between runs an idle worker keeps its weights, not the last run's peak (measured on
    the GPU by scripts/device_check.sh; here the call itself)."""
    pytest.importorskip("torch", reason="the Blender 5.1+ test environment has no PyTorch")
    from openlrm_blender.engine import runtime
    from openlrm_blender.worker import server

    calls = []
    monkeypatch.setattr(runtime, "free_cached_memory", lambda: calls.append("freed"))
    fields = {"engine": "tests.support.fake_engines:slow", "engine_arguments": {"steps": 4, "delay": 0.0},
              "image": str(IMAGE), "options": Options().to_fields()}  # fmt: skip
    replies = io.BytesIO()
    assert server.run(fields, {}, replies) is True
    replies.seek(0)
    kinds = []
    while (message := read_message(replies)) is not None:
        kinds.append(message[0])
    assert kinds[-1] == "result" and calls == ["freed"]


def test_a_bug_in_the_engine_is_an_internal_error_and_the_worker_is_kept():
    run = Job(
        IMAGE, Options(), engine=Engine("tests.support.fake_engines:record_options", {"path": "/nonexistent/x.json"})
    )
    run.run()
    assert run.poll().error.startswith("internal error: FileNotFoundError:"), run.poll().error
    assert client._idle is run._process and run._process.alive  # its model is still good for the next run
    client.free_models()
    assert run._process.process.wait(timeout=120) is not None


def test_a_worker_that_ran_out_of_memory_is_not_reused():
    """It ends itself after saying so: the next run must get a new one."""
    run = Job(IMAGE, Options(), engine=Engine("tests.support.fake_engines:slow", {"fail_with_memory": True}))
    run.run()
    assert run.poll().error.startswith("out of memory:")
    assert client._idle is None and not run._process.alive
    status = run_fake("slow")
    assert status.result is not None, status.error
