"""Images per minute on a local Ray cluster of one and of two one-CPU nodes, and the Ray
path's cost per image against the plain command line on one core of the same machine.

    python benchmarks/bench_cluster.py [--model small] [--images 8] [--grid 128]

Every run is the real command line in its own process (weights load and all), on the
benchmark's object-shaped model (``bench.py``'s, made once). The plain run is held to one
thread, as each one-CPU Ray worker is, so the difference is Ray's: starting workers,
shipping the package, handing out images. The fp32 matrix-product peak of the machine,
measured in the same run, says what kind of CPU the figures came from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback addresses only
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench import DEFAULT_CACHE, matmul_peak_gflops, model_folder, test_image

REPO = Path(__file__).resolve().parent.parent


def convert(images: Path, out: Path, arguments: list[str], threads: int | None = None) -> float:
    """Seconds for the command line to convert the folder."""
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "openlrm_blender.engine", str(images), "-o", str(out), "-q", *arguments]
    start = time.perf_counter()
    done = subprocess.run(command, check=False, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds


def on_cluster(nodes: int, images: Path, out: Path, arguments: list[str]) -> float:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        return convert(images, out, [*arguments, "--ray", cluster.address])
    finally:
        cluster.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="the benchmark model (bench.py's sizes)")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--grid", type=int, default=128)
    args = parser.parse_args()
    folder = model_folder(args.model, DEFAULT_CACHE)
    peak = matmul_peak_gflops()
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "images"
        images.mkdir()
        first = test_image(images / "image-00.png")
        for index in range(1, args.images):
            shutil.copy(first, images / f"image-{index:02d}.png")
        arguments = ["--weights", str(folder), "--resolution", str(args.grid)]
        plain = convert(images, Path(scratch) / "plain", arguments, threads=1)
        one = on_cluster(1, images, Path(scratch) / "one", arguments)
        two = on_cluster(2, images, Path(scratch) / "two", arguments)
    n = args.images
    print(f"fp32 matmul peak of this run: {peak:.0f} GFLOP/s (2048^3 products, best of 5)")
    print(f"{n} images, {args.model} model, grid {args.grid}, each run a new process with its weights load")
    print(f"plain command line, 1 thread:  {plain:6.1f} s  {60 * n / plain:5.1f} images/min")
    print(f"Ray, 1 node x 1 CPU:           {one:6.1f} s  {60 * n / one:5.1f} images/min")
    print(f"Ray, 2 nodes x 1 CPU:          {two:6.1f} s  {60 * n / two:5.1f} images/min  ({one / two:.2f}x one node)")
    print(f"Ray's cost per image against the plain run: {(one - plain) / n:+.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
