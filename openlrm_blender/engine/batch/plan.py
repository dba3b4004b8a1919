"""Which output file each input image gets, decided before any model work, and which of
them are already there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError
from ..export.mesh_files import FORMATS, temporaries_of
from ..input.read import IMAGE_SUFFIXES, open_image


@dataclass(frozen=True)
class Job:
    """One image and the mesh file it becomes; with ``views``, more photos of the same object;
    with ``paint``, the mesh file it paints instead of making one."""

    image: Path
    output: Path
    views: tuple[Path, ...] = ()
    paint: Path | None = None


def plan_outputs(image: Path, output: Path, format: str | None) -> list[Job]:
    """Each input image with its own output file.

    A folder's images go into the output folder, named after them; where two share a stem
    (x.png, x.jpg) the whole name is kept (x.png.ply, x.jpg.ply), so none overwrites another.
    """
    if image.is_dir():
        images = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise EngineError(f"{image}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        if output.exists() and not output.is_dir():
            raise EngineError(f"{output}: is a file; for a folder of images give an output folder")
        suffix = f".{format or 'ply'}"
        stems = [path.stem for path in images]
        return [
            Job(path, output / f"{path.stem if stems.count(path.stem) == 1 else path.name}{suffix}") for path in images
        ]
    if output.is_dir():
        return [Job(image, output / f"{image.stem}.{format or 'ply'}")]
    if not output.suffix:
        return [Job(image, output.with_suffix(f".{format or 'ply'}"))]
    if output.suffix.lower() not in FORMATS:
        raise EngineError(f"{output}: the output must end in {' or '.join(FORMATS)}")
    if format and output.suffix.lower() != f".{format}":
        raise EngineError(f"{output}: the output's suffix and --format {format} disagree; give one of them")
    return [Job(image, output)]


def missing(jobs: list[Job]) -> list[Job]:
    """The jobs whose output is not there yet. An output file is complete whenever it exists:
    each is renamed into place whole, and a textured OBJ only after its .mtl and .png."""
    return [job for job in jobs if not job.output.is_file()]


def check_images(jobs: list[Job], max_megapixels: float) -> dict[Path, str]:
    """Every input opened and its size checked (nothing decoded), before any model work:
    a batch learns at once which images cannot be used."""
    failures = {}
    for job in jobs:
        try:
            open_image(job.image, max_megapixels).close()
        except EngineError as exc:
            failures[job.image] = str(exc)
    return failures


def remove_temporaries(jobs: list[Job]) -> list[Path]:
    """Delete what a write cut short (a worker killed mid-write) left beside the outputs."""
    removed = []
    for job in jobs:
        for temporary in temporaries_of(job.output):
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
    return removed
