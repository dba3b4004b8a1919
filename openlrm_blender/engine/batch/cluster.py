"""A batch spread over a Ray cluster.

Each worker is a Ray actor that keeps its model loaded from one image to the next: one per
GPU on a GPU cluster, else one per node using that node's cores. The driver hands a ready
worker one image at a time, so an image lost with its worker (or its whole node) is simply
handed to another; each image ends with exactly one complete output file (written by the
worker straight into the shared output folder, renamed into place whole) or a named
failure. The package itself travels to the workers in Ray's runtime environment: the
cluster's nodes need only the engine's dependencies.
"""

from __future__ import annotations

import socket
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import EngineError
from ..options import Options
from .convert import Outcome, convert, naming
from .plan import Job, remove_temporaries

PACKAGE = Path(__file__).resolve().parents[2]  # openlrm_blender/, shipped to every worker
INSTALL = (
    "pip install -r requirements-farm.txt (Ray 2.60.0) here, and the same Ray with the engine's requirements "
    "(requirements.txt) on the cluster's nodes"
)
MAX_LOSSES = 3  # an image whose worker dies this often is given up: it may be what kills them
START_TIMEOUT = 600.0  # seconds with no worker able to start (the cluster full, or lacking what they ask for)


def import_ray() -> Any:
    """Ray, or a sentence saying how to get it: it is optional, and never in the Blender zips."""
    try:
        import ray
    except ImportError:
        raise EngineError(f"--ray needs Ray: {INSTALL}") from None
    return ray


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A ``host:port`` that answers, before Ray is asked: Ray itself retries an unreachable
    cluster for many minutes, printing a warning every few seconds."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return  # "auto": Ray finds the address itself, and says so when it finds none
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class Sizing:
    """How many workers, and what each asks Ray for."""

    workers: int
    cpus: int
    gpus: float


def size_workers(
    node_resources: list[dict[str, float]], workers: int | None, gpus_per_worker: float | None, device: str = "auto"
) -> Sizing:
    """One worker per GPU (or per ``gpus_per_worker``) where the run uses GPUs, each with its
    share of its node's cores for marching cubes and the surface; else one per node, each
    asking for the smallest node's cores so that it fits on any of them. Nodes without CPUs
    (a KubeRay head started with ``num-cpus: 0``) take no worker. ``device`` is the run's:
    "cpu" reserves no GPU, "cuda" (or "mps") needs them."""
    usable = [resources for resources in node_resources if resources.get("CPU", 0) >= 1]
    if not usable:
        raise EngineError("the Ray cluster has no node with a CPU to run a worker on")
    total_gpus = sum(resources.get("GPU", 0) for resources in usable)
    if device == "cpu" and gpus_per_worker:
        raise EngineError(f"--ray-gpus-per-worker {gpus_per_worker:g} with --device cpu: the workers would hold GPUs "
                          "they never use (give 0, or another device)")  # fmt: skip
    if device in ("cuda", "mps") and gpus_per_worker == 0:
        raise EngineError(f"--device {device} with --ray-gpus-per-worker 0: the workers would have no GPU "
                          "(give --ray-gpus-per-worker 1, or --device cpu)")  # fmt: skip
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if device in ("cuda", "mps") or (total_gpus and device != "cpu") else 0.0
    if gpus_per_worker > 0:
        if total_gpus < gpus_per_worker:
            raise EngineError(
                f"--ray-gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {total_gpus:g} GPUs "
                "(give 0 to run on CPUs)"
            )
        gpu_nodes = [resources for resources in usable if resources.get("GPU", 0) >= gpus_per_worker]
        cpus = min(int(resources["CPU"] // (resources["GPU"] // gpus_per_worker)) for resources in gpu_nodes)
        return Sizing(workers or int(total_gpus // gpus_per_worker), max(1, cpus), gpus_per_worker)
    count = workers or len(usable)
    smallest = int(min(resources["CPU"] for resources in usable))
    total = int(sum(resources["CPU"] for resources in usable))
    return Sizing(count, max(1, min(smallest, total // count)), 0.0)


class Converter:
    """A worker's body (made a Ray actor by the driver): the options once, then image after
    image; the model stays loaded in this process between them (``runtime.get_model``)."""

    def __init__(self, options: Options) -> None:
        ray = import_ray()
        self.options = options
        self.where = f"{ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()[:8]}"

    def node(self) -> str:
        """Where this worker runs, for people to read: address and the start of Ray's node id."""
        return self.where

    def convert(self, job: Job) -> Outcome:
        return replace(convert(job, self.options), node=self.where)


@dataclass(frozen=True)
class Event:
    """One step of the batch, for a progress display: ``kind`` is "started", "finished"
    (``outcome`` set) or "lost" (the worker died with the image)."""

    kind: str
    job: Job
    node: str
    done: int
    total: int
    at_work: int
    outcome: Outcome | None = None


@dataclass
class Summary:
    """What the batch came to: each image's outcome, and who did the work."""

    outcomes: dict[Path, Outcome] = field(default_factory=dict)
    nodes: Counter[str] = field(default_factory=Counter)  # images converted on each node
    lost: Counter[Path] = field(default_factory=Counter)  # how often each image's worker or node was lost
    workers: int = 0

    @property
    def losses(self) -> int:
        """Images handed out again after their worker or node was lost."""
        return sum(self.lost.values())


def run_on_ray(
    jobs: list[Job],
    options: Options,
    address: str,
    workers: int | None = None,
    gpus_per_worker: float | None = None,
    report: Callable[[Event], None] | None = None,
    start_timeout: float = START_TIMEOUT,
) -> Summary:
    """Convert ``jobs`` on the cluster at ``address`` (``auto``, ``host:port`` or
    ``ray://host:10001``); the inputs and outputs must be on storage every node sees."""
    ray = import_ray()
    check_reachable(address)
    try:
        ray.init(
            address=address,
            runtime_env={"py_modules": [str(PACKAGE)], "excludes": ["__pycache__", "*.pyc"]},
            logging_level="WARNING",
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        sizing = size_workers(nodes, workers, gpus_per_worker, options.device)
        return _Batch(ray, options, sizing, jobs, report or (lambda event: None), start_timeout).run()
    finally:
        ray.shutdown()
        remove_temporaries(jobs)  # a worker killed mid-write leaves its .part file behind


class _Batch:
    """The driver's loop: workers starting, idle and at work; images queued and done."""

    def __init__(self, ray: Any, options: Options, sizing: Sizing, jobs: list[Job], report, start_timeout: float):
        self.ray, self.options, self.sizing, self.report = ray, options, sizing, report
        self.start_timeout = start_timeout
        self.total = len(jobs)
        self.queue = deque(jobs)
        self.remote = ray.remote(Converter)
        self.placement = {"num_cpus": sizing.cpus, "num_gpus": sizing.gpus, "scheduling_strategy": "SPREAD"}
        self.starting: dict[Any, Any] = {}  # the node() call that says a worker is up -> the worker
        self.working: dict[Any, tuple[Any, str, Job]] = {}  # convert() call -> worker, node, job
        self.idle: list[tuple[Any, str]] = []
        self.summary = Summary(workers=sizing.workers)
        self.failed_starts = 0
        self.started_workers = 0

    def start_worker(self) -> None:
        """A new worker, named in the order they are started (``openlrm-worker-0``, ...) so that
        Ray's dashboard and ``ray.get_actor`` tell them apart."""
        name = f"openlrm-worker-{self.started_workers}"
        worker = self.remote.options(**self.placement, name=name).remote(self.options)
        self.started_workers += 1
        self.starting[worker.node.remote()] = worker

    def tell(self, kind: str, job: Job, node: str, outcome: Outcome | None = None) -> None:
        self.report(Event(kind, job, node, len(self.summary.outcomes), self.total, len(self.working), outcome))

    def finish(self, job: Job, outcome: Outcome, node: str) -> None:
        self.summary.outcomes[job.image] = outcome
        if outcome.error is None:
            self.summary.nodes[node] += 1
        self.tell("finished", job, node, outcome)

    def run(self) -> Summary:
        for _ in range(self.sizing.workers):
            self.start_worker()
        while self.queue or self.working:
            while self.idle and self.queue:
                worker, node = self.idle.pop()
                job = self.queue.popleft()
                self.working[worker.convert.remote(job)] = (worker, node, job)
                self.tell("started", job, node)
            waiting = [*self.starting, *self.working]
            timeout = None if self.working else self.start_timeout
            ready, _ = self.ray.wait(waiting, num_returns=1, timeout=timeout)
            if not ready:
                self.give_up(
                    f"no Ray worker could start within {self.start_timeout:.0f} s (the cluster is full, or "
                    f"lacks the {self.sizing.cpus} CPU / {self.sizing.gpus:g} GPU each worker asks for)"
                )
            elif ready[0] in self.starting:
                self.started(ready[0])
            else:
                self.returned(ready[0])
        return self.summary

    def started(self, call: Any) -> None:
        worker = self.starting.pop(call)
        try:
            self.idle.append((worker, self.ray.get(call)))
        except self.ray.exceptions.RuntimeEnvSetupError as exc:
            raise EngineError(f"the Ray workers cannot set up the engine's package: {exc}") from None
        except self.ray.exceptions.RayActorError as exc:
            self.failed_starts += 1
            if self.failed_starts > MAX_LOSSES * self.sizing.workers and not (self.idle or self.working):
                self.give_up(f"the Ray workers die before they start ({exc})")
            else:
                self.start_worker()

    def returned(self, call: Any) -> None:
        worker, node, job = self.working.pop(call)
        try:
            outcome = self.ray.get(call)
        except self.ray.exceptions.RayActorError as exc:  # the worker, or its node, is gone
            self.summary.lost[job.image] += 1
            self.tell("lost", job, node)
            if self.summary.lost[job.image] >= MAX_LOSSES:
                self.finish(
                    job,
                    Outcome(
                        job,
                        naming(
                            job.image,
                            f"its Ray worker was lost {MAX_LOSSES} times, last on {node} ({type(exc).__name__})",
                        ),
                    ),
                    node,
                )
            else:
                self.queue.appendleft(job)
            self.start_worker()
            return
        except self.ray.exceptions.RayTaskError as exc:  # the engine's own bug on this image
            cause = exc.cause if exc.cause is not None else exc
            outcome = Outcome(job, naming(job.image, f"internal error on {node}: {type(cause).__name__}: {cause}"))
        self.idle.append((worker, node))
        self.finish(job, outcome, node)

    def give_up(self, reason: str) -> None:
        """Every image not yet done fails with ``reason``."""
        for job in [*self.queue, *(job for _, _, job in self.working.values())]:
            self.finish(job, Outcome(job, naming(job.image, reason)), "")
        self.queue.clear()
        self.working.clear()
