"""Command line: ``python -m openlrm_blender.engine IMAGE -o OUT.ply``, no Blender needed."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .batch.cluster import Event, run_on_ray
from .batch.convert import convert
from .batch.plan import Job, check_images, missing, plan_outputs
from .errors import EngineError
from .export.mesh_files import FORMATS, check_writable
from .input.background import DEFAULT_MODEL as BACKGROUND_DEFAULT
from .input.background import MODELS as BACKGROUND_MODELS
from .models.registry import DEFAULT_MODEL, FAMILIES, PUBLISHED_MODELS, family_of_folder, family_of_name
from .options import DEVICES, PRECISIONS, SETTINGS, Options, Setting

# The table's settings, grouped as --help shows them; the surface steps come after marching cubes.
RECIPE = ("resolution", "threshold", "dense", "remove_background", "recenter", "foreground_ratio", "input_size",
          "camera_distance", "max_megapixels")  # fmt: skip
SURFACE = ("textured", "texture_size", "faces", "min_piece", "smooth_iterations", "mirror_photo")
SAMPLING = ("steps", "guidance", "seed", "tokens", "latent_steps", "latent_guidance", "view_mode")  # flow models
COLOURS = ("colours",)


def add_setting(group: argparse._ActionsContainer, setting: Setting) -> None:
    """One of ``options.SETTINGS`` as an argument: its flags, default, range and help."""
    if isinstance(setting.default, bool):
        action = "store_false" if setting.default else "store_true"
        group.add_argument(*setting.command_line_flags, dest=setting.name, action=action, help=setting.help)
        return
    if setting.choices:
        group.add_argument(
            *setting.command_line_flags, dest=setting.name, choices=setting.choices, default=setting.default,
            help=f"{setting.help} (default {setting.default})",
        )  # fmt: skip
        return
    if setting.per_model:
        published = ", ".join(
            f"{family.title} {family.settings.get(setting.name, setting.default):g}"
            for family in FAMILIES
            if setting.name in family.uses
        )
        default, said = None, f"default: the model's own, {published}"
    else:
        default, said = setting.default, f"default {setting.default:g}"
    group.add_argument(
        *setting.command_line_flags,
        dest=setting.name,
        type=type(setting.default),
        default=default,
        help=f"{setting.help} ({setting.minimum:g} to {setting.maximum:g}; {said})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m openlrm_blender.engine",
        description=(
            "Turn one image (or a folder of images) into coloured meshes with OpenLRM v1.1, TripoSR or TripoSG."
        ),
    )
    parser.add_argument("image", type=Path, help="an image file, or a folder of images")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="OUT.ply / OUT.obj / OUT.glb, or a folder for a folder of images",
    )
    parser.add_argument(
        "--format", choices=[f[1:] for f in FORMATS], help="mesh format (default: the output's suffix, else ply)"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(PUBLISHED_MODELS)} or a Hub repo id")
    parser.add_argument(
        "--weights", type=Path,
        help="a local model folder (instead of --model): OpenLRM's config.json and model.safetensors, TripoSR's "
        "config.yaml and model.safetensors or model.ckpt, or TripoSG's model_index.json and component folders",
    )  # fmt: skip
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    parser.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--cache-dir", type=Path, help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)")
    parser.add_argument("--offline", action="store_true", default=None, help="use only the Hugging Face cache")
    parser.add_argument(
        "--background-model",
        default=BACKGROUND_DEFAULT,
        metavar="NAME|FILE",
        help=f"one of rembg's models ({', '.join(BACKGROUND_MODELS)}; downloaded on first use into rembg's folder) "
        f"or an .onnx file (default: {BACKGROUND_DEFAULT})",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument(
        "--dtype", choices=list(PRECISIONS), default="auto",
        help="precision of the model (default auto: float32, and on a GPU the published code's there: TripoSG float16)",
    )  # fmt: skip
    for name in RECIPE:
        add_setting(parser, SETTINGS[name])
    sampling = parser.add_argument_group("flow models", "TripoSG's and TRELLIS's sampling (the published values by "
                                         "default)")  # fmt: skip
    for name in SAMPLING:
        add_setting(sampling, SETTINGS[name])
    trellis = parser.add_argument_group(
        "TRELLIS",
        "several photos of one object, a mesh painted from a photo, TRELLIS's colours on another model's shape",
    )
    trellis.add_argument(
        "--view", dest="views", action="append", type=Path, default=[], metavar="IMAGE",
        help="another photo of the same object (repeat for more); TRELLIS takes them all",
    )  # fmt: skip
    trellis.add_argument(
        "--paint", type=Path, metavar="MESH",
        help="paint this mesh (PLY, OBJ or GLB) from the photo instead of making one: the output has its vertices "
        "and faces as they are, coloured by TRELLIS (the photo's own pixels only with --photo-texture)",
    )  # fmt: skip
    add_setting(trellis, SETTINGS["colours"])
    trellis.add_argument(
        "--painter-weights", type=Path, metavar="DIR",
        help="with --colours trellis: a local TRELLIS folder (default: TRELLIS from the Hugging Face Hub)",
    )  # fmt: skip
    surface = parser.add_argument_group(
        "surface", "after marching cubes; GLB output is always textured (OBJ: .mtl and .png)"
    )
    for name in SURFACE:
        add_setting(surface, SETTINGS[name])
    surface.add_argument(
        "--photo-texture", action=argparse.BooleanOptionalAction, default=None,
        help="put the photo's own pixels where it shows the object (default: on for textured output, off for "
        "vertex colours)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_batch_arguments(parser)
    return parser


class ProgressBar:
    """One self-rewriting line on stderr."""

    WIDTH = 30

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        filled = round(self.WIDTH * fraction)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {fraction:4.0%} {stage}: {message}".ljust(100)[:120])
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-existing", action="store_true",
        help="convert only the images whose output file is not there yet (to resume a batch that stopped)",
    )  # fmt: skip
    ray = parser.add_argument_group(
        "Ray cluster", "spread a folder over the nodes of a Ray cluster (pip install -r requirements-farm.txt); the "
        "images and the output folder must be on storage every node sees",
    )  # fmt: skip
    ray.add_argument("--ray", metavar="ADDRESS", help="the cluster: auto, HOST:PORT or ray://HOST:10001")
    ray.add_argument(
        "--ray-workers", type=int, metavar="N",
        help="how many workers, each keeping one model loaded (default: one per GPU, or one per node on CPUs)",
    )  # fmt: skip
    ray.add_argument(
        "--ray-gpus-per-worker", type=float, metavar="G",
        help="GPUs each worker takes (default: 1 where the cluster has GPUs, else 0: CPUs)",
    )  # fmt: skip


def options_from(args: argparse.Namespace) -> Options:
    suffix = f".{args.format}" if args.format else (args.output.suffix.lower() or ".ply")
    options = Options(
        model=args.model,
        weights_dir=args.weights,
        revision=args.revision,
        token=args.token,
        cache_dir=args.cache_dir,
        offline=args.offline,
        device=args.device,
        dtype=args.dtype,
        background_model=args.background_model,
        photo_texture=args.photo_texture,
        painter_weights=args.painter_weights,
        **{name: getattr(args, name) for name in (*RECIPE, *SAMPLING, *SURFACE, *COLOURS)},
    )
    options.textured = options.textured or (suffix == ".glb" and args.paint is None)  # a painted mesh keeps no UVs
    return options


def check_family_settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """A model setting given that the model's family does not use is refused in words, not
    ignored (where the family is known before any download)."""
    family = family_of_folder(args.weights) if args.weights else family_of_name(args.model)
    if family is None:
        return
    model_settings = {name for each in FAMILIES for name in each.uses}
    unused = [
        SETTINGS[name].command_line_flags[0]
        for name in sorted(model_settings - set(family.uses))
        if getattr(args, name) != parser.get_default(name)
    ]
    if unused:
        raise EngineError(f"{family.title} does not use {' or '.join(unused)}: leave it out")


def one_object(jobs: list[Job], args: argparse.Namespace) -> Job:
    """The one job of several photos of one object, or of a mesh to paint: a folder of images
    is many objects, and a cluster spreads those."""
    what = "--view" if args.views else "--paint"
    if len(jobs) != 1 or args.ray:
        raise EngineError(f"{what} goes with one image and no --ray: {args.image} is a folder of images")
    missing = [path for path in (*args.views, args.paint) if path is not None and not path.is_file()]
    if missing:
        raise EngineError(f"{missing[0]}: file not found")
    return replace(jobs[0], views=tuple(args.views), paint=args.paint)


def check_ray_arguments(args: argparse.Namespace) -> None:
    if args.ray is None and (args.ray_workers is not None or args.ray_gpus_per_worker is not None):
        raise EngineError("--ray-workers and --ray-gpus-per-worker need --ray ADDRESS")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise EngineError(f"--ray-workers {args.ray_workers}: give at least 1")
    if args.ray_gpus_per_worker is not None and args.ray_gpus_per_worker < 0:
        raise EngineError(f"--ray-gpus-per-worker {args.ray_gpus_per_worker:g}: give 0 or more")


def convert_here(jobs: list[Job], options: Options, quiet: bool) -> dict[Path, str] | None:
    """One image after another in this process; None where the user pressed Ctrl+C."""
    failures = {}
    for job in jobs:
        bar = None if quiet else ProgressBar(job.image.name)
        try:
            outcome = convert(job, options, progress=bar)
        except KeyboardInterrupt:
            return None
        finally:
            if bar:
                bar.close()
        if outcome.error:
            failures[job.image] = outcome.error
        else:
            print(outcome.line())
    return failures


def counted(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"


def convert_on_ray(jobs: list[Job], options: Options, args: argparse.Namespace) -> dict[Path, str] | None:
    """The jobs spread over the cluster; None where the user pressed Ctrl+C (the workers go with the driver)."""

    def report(event: Event) -> None:
        if event.kind == "finished" and event.outcome.error is None:
            print(event.outcome.line(), flush=True)
        if not args.quiet:
            what = {"started": "started on", "finished": "done on", "lost": "lost with its worker on"}[event.kind]
            sys.stderr.write(f"[{event.done}/{event.total} done, {counted(event.at_work, 'worker')} at work] "
                             f"{event.job.image.name} {what} {event.node or 'no node'}\n")  # fmt: skip

    try:
        summary = run_on_ray(jobs, options, args.ray, args.ray_workers, args.ray_gpus_per_worker, report)
    except KeyboardInterrupt:
        return None
    converted = sum(summary.nodes.values())
    nodes = ", ".join(f"{node} ({count})" for node, count in sorted(summary.nodes.items()))
    lost = (
        f"; {counted(summary.losses, 'image')} handed out again after losing a worker or node" if summary.losses else ""
    )
    print(f"{converted} of {counted(len(jobs), 'image')} converted by {counted(summary.workers, 'Ray worker')} on "
          f"{counted(len(summary.nodes), 'node')}: {nodes or 'none'}{lost}", file=sys.stderr)  # fmt: skip
    return {image: outcome.error for image, outcome in summary.outcomes.items() if outcome.error}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = options_from(args)
    try:
        options.validate()
        check_ray_arguments(args)
        jobs = plan_outputs(args.image, args.output, args.format)
        if args.views or args.paint:
            jobs = [one_object(jobs, args)]
        check_writable(sorted({job.output.parent for job in jobs}))
        check_family_settings(args, parser)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    planned = len(jobs)
    if args.skip_existing:
        jobs = missing(jobs)
        print(f"{planned - len(jobs)} of {planned} outputs already there: skipped", file=sys.stderr)
    failures = check_images(jobs, options.max_megapixels)
    usable = [job for job in jobs if job.image not in failures]
    try:
        converted = (
            convert_on_ray(usable, options, args) if args.ray and usable else convert_here(usable, options, args.quiet)
        )
    except EngineError as exc:  # the cluster as a whole: unreachable, no room for a worker
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if converted is None:
        print("\ncancelled", file=sys.stderr)
        return 130
    failures.update(converted)
    for message in failures.values():
        print(f"error: {message}", file=sys.stderr)
    if failures and planned > 1:
        print(f"{len(failures)} of {len(jobs)} images failed", file=sys.stderr)
    return 1 if failures else 0
