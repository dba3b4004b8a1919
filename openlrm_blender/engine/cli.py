"""Command line: ``python -m openlrm_blender.engine IMAGE -o OUT.ply``, no Blender needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EngineError
from .export import FORMATS, write_mesh
from .config import DEFAULT_MODEL, PUBLISHED_MODELS
from .options import DEVICES, PRECISIONS, Options
from .pipeline import generate

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m openlrm_blender.engine",
        description="Turn one image (or a folder of images) into coloured meshes with OpenLRM v1.1.",
    )
    parser.add_argument("image", type=Path, help="an image file, or a folder of images")
    parser.add_argument("-o", "--output", type=Path, required=True, help="OUT.ply / OUT.obj, or a folder for a folder of images")
    parser.add_argument("--format", choices=[f[1:] for f in FORMATS], default="ply", help="mesh format when writing into a folder")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(PUBLISHED_MODELS)} or a Hub repo id")
    parser.add_argument("--weights", type=Path, help="local folder with config.json and model.safetensors (instead of --model)")
    parser.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    parser.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--cache-dir", type=Path, help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)")
    parser.add_argument("--offline", action="store_true", default=None, help="use only the Hugging Face cache")
    parser.add_argument("--grid", type=int, default=384, help="marching-cubes grid points per axis (default 384)")
    parser.add_argument("--threshold", type=float, default=3.0, help="density threshold (default 3.0)")
    parser.add_argument("--dense", action="store_true", help="evaluate the density on every grid point (published recipe; slow)")
    parser.add_argument("--no-remove-bg", action="store_true", help="do not remove the background")
    parser.add_argument("--background-model", type=Path, help="rembg's u2net.onnx (default: $U2NET_HOME or ~/.u2net)")
    parser.add_argument("--no-recenter", action="store_true", help="do not crop and recentre the object")
    parser.add_argument("--foreground-ratio", type=float, default=0.8, help="object size in the recentred image (default 0.8)")
    parser.add_argument("--input-size", type=int, default=0, help="model input size in pixels (default: the model's published size)")
    parser.add_argument("--camera-distance", type=float, default=2.0, help="source camera distance (default 2.0)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--dtype", choices=list(PRECISIONS), default="float32", help="precision of the model (default float32)")
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


def _jobs(image: Path, output: Path, suffix: str) -> list[tuple[Path, Path]]:
    if image.is_dir():
        images = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise EngineError(f"{image}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        output.mkdir(parents=True, exist_ok=True)
        return [(path, output / f"{path.stem}{suffix}") for path in images]
    if output.suffix.lower() not in FORMATS:
        raise EngineError(f"{output}: the output must end in {' or '.join(FORMATS)}")
    return [(image, output)]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        model=args.model,
        weights_dir=args.weights,
        revision=args.revision,
        token=args.token,
        cache_dir=args.cache_dir,
        offline=args.offline,
        device=args.device,
        dtype=args.dtype,
        remove_background=not args.no_remove_bg,
        background_model=args.background_model,
        recenter=not args.no_recenter,
        foreground_ratio=args.foreground_ratio,
        input_size=args.input_size,
        camera_distance=args.camera_distance,
        resolution=args.grid,
        threshold=args.threshold,
        dense=args.dense,
    )
    try:
        jobs = _jobs(args.image, args.output, f".{args.format}")
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failures = 0
    for image, output in jobs:
        bar = None if args.quiet else ProgressBar(image.name)
        try:
            result = generate(image, options, progress=bar)
            output.parent.mkdir(parents=True, exist_ok=True)
            write_mesh(result.mesh, output)
            error = None
        except EngineError as exc:
            error = exc
        except KeyboardInterrupt:
            print("\ncancelled", file=sys.stderr)
            return 130
        finally:
            if bar:
                bar.close()
        if error is not None:
            failures += 1
            print(f"error: {error}", file=sys.stderr)
            continue
        mesh = result.mesh
        print(
            f"{output}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces "
            f"({result.timings['total']:.1f} s on {result.device})"
        )
    return 1 if failures else 0
