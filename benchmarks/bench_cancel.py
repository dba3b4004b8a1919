"""How soon Cancel takes effect in each stage of a real run, and how long a fresh worker
takes to start, through the add-on's own job (the worker process), no Blender needed.

    python benchmarks/bench_cancel.py [--size small] [--grid 384]

For each stage the run is cancelled as soon as the worker reports that stage; the time is
from the cancel to the job's "cancelled" status. The model is bench.py's benchmark model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import DEFAULT_CACHE, model_folder, test_image

from openlrm_blender.engine import Options
from openlrm_blender.engine.progress import STAGES as ENGINE_STAGES
from openlrm_blender.jobs import job
from openlrm_blender.worker.client import free_models

STAGES = ("startup", *ENGINE_STAGES[:4])  # a fresh worker's first, then the engine's ("surface" is not asked for)


def cancel_in(stage: str, image: Path, options: Options) -> tuple[float, float]:
    """Seconds from the start (a fresh worker) to ``stage``, and from the cancel to the
    cancelled status."""
    reported = threading.Event()
    run = job.Job(image, options, listener=lambda status: status.stage == stage and reported.set())
    started = time.perf_counter()
    run.start()
    if not reported.wait(600):
        raise SystemExit(f"the run never reached {stage}: {run.poll()}")
    reached = time.perf_counter() - started
    cancelled = time.perf_counter()
    run.cancel()
    while not run.poll().finished:
        time.sleep(0.001)
    return reached, time.perf_counter() - cancelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=("small", "base", "large"))
    parser.add_argument("--grid", type=int, default=384)
    arguments = parser.parse_args()
    folder = model_folder(arguments.size, DEFAULT_CACHE)
    with tempfile.TemporaryDirectory() as scratch:
        image = test_image(Path(scratch) / "disc.png")
        options = Options(weights_dir=folder, resolution=arguments.grid)
        started = time.perf_counter()
        run = job.Job(image, options)
        run.run()
        print(
            f"first run in a fresh worker: {time.perf_counter() - started:.2f} s "
            f"({run.poll().result.timings['total']:.2f} s in the engine)"
        )
        free_models()  # each run below starts a fresh worker: a cancel ends the worker
        print(f"{'cancelled in':<14}{'reached after':>15}{'took effect in':>16}")
        for stage in STAGES:
            reached, latency = cancel_in(stage, image, options)
            print(f"{stage:<14}{reached:>13.2f} s{latency * 1000:>13.1f} ms")


if __name__ == "__main__":
    main()
