"""``--ray``: a folder converted on a real Ray cluster of two nodes on 127.0.0.1, a node
killed mid-batch, a broken image, ``--skip-existing``, and Ray missing."""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray reads it: every Ray address on loopback

import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from plyfile import PlyData

from openlrm_blender.engine.batch.cluster import Sizing, run_on_ray, size_workers
from openlrm_blender.engine.batch.plan import plan_outputs
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.options import Options
from tests.conftest import REPO, TINY_GRID, TINY_SIZE
from tests.test_cli import TINY_ARGS

ray = pytest.importorskip("ray", reason="Ray is in requirements-farm.txt (requirements-dev.txt takes it)")
from ray._private import ray_constants  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
}


def start_cluster() -> tuple[Cluster, list]:
    """A head for the driver only (no CPU, as KubeRay sets heads up) and two one-CPU nodes."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS,
                        "object_store_memory": NODE["object_store_memory"]},
    )  # fmt: skip
    nodes = [cluster.add_node(**NODE) for _ in range(2)]
    assert cluster.address.startswith("127.0.0.1:"), cluster.address
    assert all(node.node_ip_address == "127.0.0.1" for node in [cluster.head_node, *nodes])
    return cluster, nodes


@pytest.fixture(scope="module")
def cluster():
    cluster, _ = start_cluster()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory, tiny_dir) -> Path:
    """Four different pictures of the tiny model's object (each makes its own mesh)."""
    folder = tmp_path_factory.mktemp("images")
    picture = Image.open(tiny_dir / "input.png")
    for name, variant in {
        "a.png": picture,
        "b.png": ImageOps.mirror(picture),
        "c.png": picture.rotate(8),
        "d.png": ImageOps.flip(picture),
    }.items():
        variant.save(folder / name)
    return folder


@pytest.fixture(scope="module")
def plain(images, tiny_dir, tmp_path_factory) -> Path:
    """The plain command line's meshes of the same folder, the reference."""
    out = tmp_path_factory.mktemp("plain")
    assert main([str(images), "-o", str(out), "--weights", str(tiny_dir), *TINY_ARGS, "--no-remove-bg"]) == 0
    return out


def tiny_options(tiny_dir: Path) -> Options:
    return Options(
        weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, recenter=False, remove_background=False
    )


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vertex = PlyData.read(str(path))["vertex"]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(int)
    faces = np.stack(PlyData.read(str(path))["face"]["vertex_indices"])
    return xyz, rgb, faces


def assert_same_meshes(folder: Path, reference: Path) -> None:
    names = sorted(path.name for path in reference.iterdir())
    assert sorted(path.name for path in folder.iterdir()) == names  # nothing else: no temporary file
    for name in names:
        (xyz, rgb, faces), (xyz0, rgb0, faces0) = read_ply(folder / name), read_ply(reference / name)
        assert xyz.shape == xyz0.shape and np.array_equal(faces, faces0), name
        np.testing.assert_allclose(xyz, xyz0, atol=1e-5)
        assert np.abs(rgb - rgb0).max() <= 1


def test_a_folder_on_two_nodes_gives_the_plain_command_lines_meshes(cluster, images, plain, tiny_dir, tmp_path):
    """The command line itself, run from a folder without the package: the workers can only
    have it from Ray's runtime environment."""
    out = tmp_path / "meshes"
    command = [sys.executable, "-m", "openlrm_blender.engine", str(images), "-o", str(out), "--weights", str(tiny_dir),
               *(a for a in TINY_ARGS if a != "-q"), "--no-remove-bg", "--ray", cluster.address]  # fmt: skip
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        command, check=False, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert_same_meshes(out, plain)
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("4 of 4 images converted by 2 Ray workers on "), summary  # which nodes: the next test
    assert len(done.stdout.strip().splitlines()) == 4 and "node 127.0.0.1" in done.stdout
    assert "[4/4 done, 0 workers at work]" in done.stderr


def test_an_unreachable_cluster_is_an_error_not_a_wait(images, tmp_path, capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"  # bound, not listening: refused
        assert main([str(images), "-o", str(tmp_path), "--ray", address]) == 1
    assert f"error: cannot reach the Ray cluster at {address} (Connection refused)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_both_workers_take_images(cluster, images, plain, tiny_dir, tmp_path):
    """Work on both nodes, made certain: the first image's start waits until both workers
    are up (``ray.wait`` gives the driver a worker that has started before one that has
    finished an image: its list has the starting workers first, and keeps that order)."""
    jobs = plan_outputs(images, tmp_path, "ply")
    workers = []

    def report(event):
        if event.kind == "started" and not workers:
            workers.extend(ray.get([ray.get_actor(f"openlrm-worker-{n}").node.remote() for n in range(2)]))

    summary = run_on_ray(jobs, tiny_options(tiny_dir), cluster.address, report=report)
    assert len(summary.nodes) == 2 and sum(summary.nodes.values()) == 4, summary.nodes
    assert sorted(workers) == sorted(summary.nodes)
    assert_same_meshes(tmp_path, plain)


def processes_below(pid: int) -> list[int]:
    """Every process started by ``pid``, read from /proc: a node's Ray workers are its raylet's children."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_node(cluster: Cluster, node) -> None:
    """The machine gone at once: its workers killed with its raylet, none finishing what it had."""
    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    for pid in processes_below(raylet):
        os.kill(pid, signal.SIGKILL)
    cluster.remove_node(node, allow_graceful=False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_node_killed_mid_batch_loses_no_image_and_makes_none_twice(images, tiny_dir, tmp_path):
    """The node that took the first image is killed while it has it (at a grid of 64 an image
    is hundreds of milliseconds of work, the kill a few); that image is converted on the
    other node, and each image ends with one complete output."""
    cluster, nodes = start_cluster()
    try:
        jobs = plan_outputs(images, tmp_path, "ply")
        events, killed = [], []

        def report(event):
            events.append(event)
            if event.kind == "started" and not killed:
                kill_node(cluster, next(node for node in nodes if event.node.endswith(node.node_id[:8])))
                killed.append((event.job, event.node))

        options = replace(tiny_options(tiny_dir), resolution=64)
        summary = run_on_ray(jobs, options, cluster.address, report=report)
    finally:
        cluster.shutdown()
    (lost_job, lost_node), = killed  # fmt: skip
    assert [event.job for event in events if event.kind == "lost"] == [lost_job]
    assert summary.losses == 1
    finished = [event.job for event in events if event.kind == "finished"]
    assert sorted(job.image.name for job in finished) == ["a.png", "b.png", "c.png", "d.png"]  # each once
    assert all(outcome.error is None for outcome in summary.outcomes.values())
    assert lost_node not in summary.nodes and sum(summary.nodes.values()) == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.ply", "b.ply", "c.ply", "d.ply"]  # no temporary
    for job in jobs:
        assert len(read_ply(job.output)[0]) == summary.outcomes[job.image].vertices > 0  # complete


def test_a_broken_image_fails_alone_and_skip_existing_resumes(cluster, images, plain, tiny_dir, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    (folder / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "meshes"
    out.mkdir()
    shutil.copy(plain / "a.ply", out / "a.ply")  # as a batch that stopped after one image left it
    (out / ".c.ply.x1y2.part").write_bytes(b"half a mesh")  # and a write it cut short
    arguments = [
        str(folder),
        "-o",
        str(out),
        "--weights",
        str(tiny_dir),
        *TINY_ARGS,
        "--no-remove-bg",
        "--ray",
        cluster.address,
    ]
    before = (out / "a.ply").stat().st_mtime_ns
    assert main([*arguments, "--skip-existing"]) == 1
    assert (out / "a.ply").stat().st_mtime_ns == before  # not converted again
    assert_same_meshes(out, plain)  # the rest made, the temporary file gone, nothing for broken.png


def test_worker_sizes():
    cpu_nodes = [{"CPU": 8.0}, {"CPU": 4.0}, {"CPU": 0.0}]  # a head without CPUs takes no worker
    assert size_workers(cpu_nodes, None, None) == Sizing(2, 4, 0.0)
    assert size_workers(cpu_nodes, 6, None) == Sizing(6, 2, 0.0)
    gpu_nodes = [{"CPU": 16.0, "GPU": 4.0}, {"CPU": 16.0, "GPU": 2.0}]
    # A GPU worker gets its share of its node's cores (marching cubes and the surface run there).
    assert size_workers(gpu_nodes, None, None) == Sizing(6, 4, 1.0)
    assert size_workers(gpu_nodes, None, 2) == Sizing(3, 8, 2.0)
    assert size_workers(gpu_nodes, None, 0) == Sizing(2, 16, 0.0)
    with pytest.raises(Exception, match="the Ray cluster has 0 GPUs"):
        size_workers(cpu_nodes, None, 1)
    # The run's device decides too: a CPU run reserves no GPU, a CUDA run needs them.
    assert size_workers(gpu_nodes, None, None, "cpu") == Sizing(2, 16, 0.0)
    assert size_workers(gpu_nodes, None, None, "cuda") == Sizing(6, 4, 1.0)
    with pytest.raises(Exception, match="--device cpu: the workers would hold GPUs"):
        size_workers(gpu_nodes, None, 1, "cpu")
    with pytest.raises(Exception, match="--device cuda with --ray-gpus-per-worker 0"):
        size_workers(gpu_nodes, None, 0, "cuda")
    with pytest.raises(Exception, match="the Ray cluster has 0 GPUs"):
        size_workers(cpu_nodes, None, None, "cuda")


def test_without_ray_the_flag_says_how_to_install_it(images, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from openlrm_blender.engine.cli import main\n"
        f"sys.exit(main([{str(images)!r}, '-o', {str(tmp_path)!r}, '--ray', 'auto']))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: --ray needs Ray: pip install -r requirements-farm.txt (Ray 2.60.0)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_ray_options_need_ray(images, tmp_path, capsys):
    assert main([str(images), "-o", str(tmp_path), "--ray-workers", "2"]) == 1
    assert "error: --ray-workers and --ray-gpus-per-worker need --ray ADDRESS" in capsys.readouterr().err
