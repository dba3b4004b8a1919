"""One image to its mesh file, with every failure that belongs to the image (a broken file,
out of memory, an unwritable output) turned into a sentence, so a batch goes on without it.
The same call runs in the command line's loop and in each Ray worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError, out_of_memory_message
from ..export.mesh_files import write_mesh
from ..options import Options
from ..pipeline import generate, paint
from ..progress import ProgressCallback
from ..runtime import free_cached_memory
from .plan import Job


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``error`` is None when its output file was written."""

    job: Job
    error: str | None = None
    vertices: int = 0
    faces: int = 0
    seconds: float = 0.0
    device: str = ""
    node: str = ""  # the Ray node that made it, on a cluster

    def line(self) -> str:
        """The line the command line prints for a written file."""
        where = f"{self.device}, node {self.node}" if self.node else self.device
        return f"{self.job.output}: {self.vertices} vertices, {self.faces} faces ({self.seconds:.1f} s on {where})"


def naming(image: Path, message: str) -> str:
    """The message, with the image it belongs to in front unless it names it already."""
    return message if str(image) in message else f"{image}: {message}"


def convert(job: Job, options: Options, progress: ProgressCallback | None = None) -> Outcome:
    """Generate the mesh and write it atomically; KeyboardInterrupt and the engine's own
    bugs go up, everything that is the image's fault comes back as the outcome's error."""
    try:
        if job.paint is not None:
            result = paint(job.image, job.paint, options, progress=progress, views=job.views)
        else:
            result = generate(job.image, options, progress=progress, views=job.views)
    except EngineError as exc:
        return Outcome(job, naming(job.image, str(exc)))
    except (MemoryError, RuntimeError) as exc:  # PyTorch's allocators raise RuntimeError
        message = out_of_memory_message(exc)
        if message is None:
            raise
        free_cached_memory()  # the run's tensors are gone with it; what the allocator kept goes too
        return Outcome(job, naming(job.image, message))  # the rest go on
    try:
        write_mesh(result.mesh, job.output)
    except EngineError as exc:  # names the output file
        return Outcome(job, str(exc))
    mesh = result.mesh
    return Outcome(job, None, len(mesh.vertices), len(mesh.faces), result.timings["total"], str(result.device))
