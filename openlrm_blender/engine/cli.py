"""Command line: ``python -m openlrm_blender.engine IMAGE -o OUT.ply``, no Blender needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .input.background import DEFAULT_MODEL as BACKGROUND_DEFAULT
from .input.background import MODELS as BACKGROUND_MODELS
from .errors import EngineError, out_of_memory_message
from .export.mesh_files import FORMATS, check_writable, write_mesh
from .input.read import IMAGE_SUFFIXES, open_image
from .models.registry import DEFAULT_MODEL, FAMILIES, PUBLISHED_MODELS
from .options import DEVICES, PRECISIONS, SETTINGS, Options, Setting
from .pipeline import generate



# The table's settings, grouped as --help shows them; the surface steps come after marching cubes.
RECIPE = ("resolution", "threshold", "dense", "remove_background", "recenter", "foreground_ratio", "input_size",
          "camera_distance", "max_megapixels")  # fmt: skip
SURFACE = ("textured", "texture_size", "faces", "min_piece", "smooth_iterations")


def add_setting(group: argparse._ActionsContainer, setting: Setting) -> None:
    """One of ``options.SETTINGS`` as an argument: its flags, default, range and help."""
    if isinstance(setting.default, bool):
        action = "store_false" if setting.default else "store_true"
        group.add_argument(*setting.command_line_flags, dest=setting.name, action=action, help=setting.help)
        return
    if setting.per_model:
        published = ", ".join(f"{family.title} {family.settings.get(setting.name, setting.default):g}" for family in FAMILIES)
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
        description="Turn one image (or a folder of images) into coloured meshes with OpenLRM v1.1 or TripoSR.",
    )
    parser.add_argument("image", type=Path, help="an image file, or a folder of images")
    parser.add_argument("-o", "--output", type=Path, required=True, help="OUT.ply / OUT.obj / OUT.glb, or a folder for a folder of images")
    parser.add_argument(
        "--format", choices=[f[1:] for f in FORMATS], help="mesh format (default: the output's suffix, else ply)"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(PUBLISHED_MODELS)} or a Hub repo id")
    parser.add_argument(
        "--weights", type=Path,
        help="a local model folder (instead of --model): OpenLRM's config.json and model.safetensors, or TripoSR's "
        "config.yaml and model.safetensors or model.ckpt",
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
    parser.add_argument("--dtype", choices=list(PRECISIONS), default="float32", help="precision of the model (default float32)")
    for name in RECIPE:
        add_setting(parser, SETTINGS[name])
    surface = parser.add_argument_group("surface", "after marching cubes; GLB output is always textured (OBJ: .mtl and .png)")
    for name in SURFACE:
        add_setting(surface, SETTINGS[name])
    surface.add_argument(
        "--photo-texture", action=argparse.BooleanOptionalAction, default=None,
        help="put the photo's own pixels where it shows the object (default: on for textured output, off for "
        "vertex colours)",
    )  # fmt: skip
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
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


def plan_outputs(image: Path, output: Path, format: str | None) -> list[tuple[Path, Path]]:
    """Each input image with its own output file, decided before any work.

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
        return [(path, output / f"{path.stem if stems.count(path.stem) == 1 else path.name}{suffix}") for path in images]
    if output.is_dir():
        return [(image, output / f"{image.stem}.{format or 'ply'}")]
    if not output.suffix:
        return [(image, output.with_suffix(f".{format or 'ply'}"))]
    if output.suffix.lower() not in FORMATS:
        raise EngineError(f"{output}: the output must end in {' or '.join(FORMATS)}")
    if format and output.suffix.lower() != f".{format}":
        raise EngineError(f"{output}: the output's suffix and --format {format} disagree; give one of them")
    return [(image, output)]


def check_images(jobs: list[tuple[Path, Path]], max_megapixels: float) -> dict[Path, str]:
    """Every input opened and its size checked (nothing decoded), before any model work:
    a batch learns at once which images cannot be used."""
    failures = {}
    for image, _ in jobs:
        try:
            open_image(image, max_megapixels).close()
        except EngineError as exc:
            failures[image] = str(exc)
    return failures


def _naming(image: Path, message: str) -> str:
    """The message, with the image it belongs to in front unless it names it already."""
    return message if str(image) in message else f"{image}: {message}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        **{name: getattr(args, name) for name in (*RECIPE, *SURFACE)},
    )
    options.textured = options.textured or suffix == ".glb"
    try:
        options.validate()
        jobs = plan_outputs(args.image, args.output, args.format)
        check_writable(sorted({output.parent for _, output in jobs}))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failures = check_images(jobs, options.max_megapixels)
    for image, output in jobs:
        if image in failures:
            continue
        bar = None if args.quiet else ProgressBar(image.name)
        try:
            result = generate(image, options, progress=bar)
        except EngineError as exc:
            failures[image] = _naming(image, str(exc))
            continue
        except (MemoryError, RuntimeError) as exc:  # PyTorch's allocators raise RuntimeError
            message = out_of_memory_message(exc)
            if message is None:
                raise
            failures[image] = _naming(image, message)  # the run's tensors are gone with it: the rest go on
            continue
        except KeyboardInterrupt:
            print("\ncancelled", file=sys.stderr)
            return 130
        finally:
            if bar:
                bar.close()
        try:
            write_mesh(result.mesh, output)
        except EngineError as exc:  # names the output file
            failures[image] = str(exc)
            continue
        mesh = result.mesh
        print(
            f"{output}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces "
            f"({result.timings['total']:.1f} s on {result.device})"
        )
    for message in failures.values():
        print(f"error: {message}", file=sys.stderr)
    if failures and len(jobs) > 1:
        print(f"{len(failures)} of {len(jobs)} images failed", file=sys.stderr)
    return 1 if failures else 0
