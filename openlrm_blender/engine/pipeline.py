"""One call from an image to mesh arrays, with progress, cancellation and a model cache."""

from __future__ import annotations

import numpy as np
import torch

from .geometry.extraction import extract_mesh
from .geometry.normals import own_and_neighbourhood_normals, vertex_normals
from .input.background import get_background_remover
from .input.prepare import has_mask
from .input.read import ImageSource, read_rgba
from .models.hub import offline_default
from .models.registry import resolve_model_dir
from .options import Options
from .progress import CancelToken, ProgressCallback, Reporter, Stopwatch
from .result import Mesh, Result
from .runtime import check_precision, get_model, keep_float32_exact, pick_device, resolve_precision, synchronise
from .surface.bake import bake_texture
from .surface.cleanup import remove_small_pieces, taubin_smooth
from .surface.colouring import Colouring, model_colouring, shape_colouring
from .surface.simplify import simplify
from .surface.uv import unwrap


def finish_surface(
    mesh: Mesh, options: Options, colouring: Colouring, report: Reporter, timings: dict[str, float]
) -> Mesh:
    """Clean-up, simplification, then either a baked texture on UVs or the vertices
    coloured again (simplifying moves them), with the photo where asked: what ``options``
    asks for."""
    stopwatch = Stopwatch(timings)
    report("surface", 0.0, "removing small pieces")
    vertices, faces, kept = remove_small_pieces(mesh.vertices, mesh.faces, options.min_piece)
    vertices = taubin_smooth(vertices, faces, options.smooth_iterations)
    stopwatch.lap("cleanup")
    report("surface", 0.1, f"simplifying {len(faces):,} faces to {options.faces:,}" if options.faces else "")
    simplified = simplify(vertices, faces, options.faces)
    moved = simplified[0] is not vertices
    vertices, faces = simplified
    stopwatch.lap("simplify")

    # Vertices that moved are coloured anew; a textured mesh keeps them too (a PLY, the viewport).
    moved_or_smoothed = moved or options.smooth_iterations
    colours = colouring.base(vertices, report.span("surface", 0.2, 0.3)) if moved_or_smoothed else mesh.colours[kept]
    if not options.textured:
        finished = Mesh(vertices=vertices, faces=faces, colours=colours, rounding=mesh.rounding)
        if colouring.photo is not None:
            report("surface", 0.3, "the photo on the front")
            finished.colours = colouring.vertex_colours(finished, colours)
            stopwatch.lap("photo")
        return finished
    report("surface", 0.3, "unwrapping UVs")
    unwrapped = unwrap(vertices, faces, options.texture_size)
    stopwatch.lap("unwrap")
    report("surface", 0.5, f"baking a {options.texture_size} px texture")

    photo_seconds = Stopwatch({})

    def texel_colours(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        base = colouring.base(points, report.span("surface", 0.5, 0.9))
        if colouring.photo is None:
            return base
        report("surface", 0.9, "the photo on the front")
        photo_seconds.lap("start")
        colours = colouring.photographed(unwrapped.vertices, unwrapped.faces, points, normals, base)
        photo_seconds.lap("photo")
        return colours

    # Normals of the surface before it was cut into charts: a chart's border faces the way
    # the surface there does (the photo's judgement), and the seams never show in light.
    texture = bake_texture(
        unwrapped.vertices, unwrapped.faces, unwrapped.uvs, own_and_neighbourhood_normals(vertices, faces)[unwrapped.source],
        options.texture_size, texel_colours, rounding=mesh.rounding,
    )  # fmt: skip
    stopwatch.lap("bake")
    report("surface", 1.0, f"a {options.texture_size} px texture baked")
    if "photo" in photo_seconds.laps:  # the photo's share of the bake, told apart
        timings["photo"] = photo_seconds.laps["photo"]
        timings["bake"] -= timings["photo"]
    colours = colours[unwrapped.source]  # the vertices split along the charts' seams are copies
    return Mesh(
        unwrapped.vertices,
        unwrapped.faces,
        colours,
        uvs=unwrapped.uvs,
        texture=texture,
        rounding=mesh.rounding,
        normals=vertex_normals(vertices, faces)[unwrapped.source],
    )


@torch.inference_mode()
def generate(
    image: ImageSource,
    options: Options | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Result:
    """Image -> coloured mesh. Raises ``EngineError`` subclasses with one-line messages."""
    options = options or Options()
    options.validate()
    report = Reporter(progress, cancel)
    timings: dict[str, float] = {}
    device = pick_device(options.device)
    stopwatch = Stopwatch(timings, lambda: synchronise(device))
    rgba = read_rgba(image, options.max_megapixels)  # a bad image fails before any model work
    needs_remover = options.remove_background and not has_mask(rgba)
    offline = offline_default() if options.offline is None else options.offline
    remover_share = 0.2 if needs_remover else 0.0  # of the model stage; the rest for the weights

    remover = None
    if needs_remover:  # first: smaller than the weights, and a missing one is known sooner
        report("model", 0.0, f"finding the background removal model {options.background_model}")
        remover = get_background_remover(
            options.background_model,
            offline,
            lambda done, total: report(
                "model",
                remover_share * done / max(total, 1),
                f"downloading the background removal model: {done / 2**20:.0f} of {total / 2**20:.0f} MB",
            ),
        )
    where = f"the folder {options.weights_dir}" if options.weights_dir else f"{options.model} on the Hugging Face Hub"
    report("model", remover_share, f"finding {where}")
    family, folder = resolve_model_dir(
        options.model,
        options.weights_dir,
        revision=options.revision,
        token=options.token,
        cache_dir=options.cache_dir,
        offline=offline,
        progress=lambda done, total, name: report(
            "model", remover_share + (1 - remover_share) * done / max(total, 1), f"downloading {name}"
        ),
    )
    options = options.for_family(family.settings)  # what the user left unset: the family's published settings
    dtype = resolve_precision(options.dtype, device, family)
    check_precision(device, dtype)
    keep_float32_exact(device, dtype)
    recipe = family.recipe()
    report("model", 1.0, f"loading the {family.title} weights from {folder.name}")
    model = get_model(folder, device, dtype)
    stopwatch.lap("load")

    report("preprocess", 0.0, "preparing the image")
    cut = recipe.cut_out(rgba, remover)
    pixels = recipe.model_input(model, cut, options.input_size, options.recenter, options.foreground_ratio)
    needs_photo = options.uses_photo or not family.makes_colours
    canvas = recipe.photo_canvas(cut, options.recenter, options.foreground_ratio) if needs_photo else None
    report("preprocess", 1.0, "image ready")
    stopwatch.lap("preprocess")

    report("encode", 0.0, "encoding the image")

    def encode_step(fraction: float, message: str) -> None:
        synchronise(device)  # the work done, not only queued
        report("encode", fraction, message)

    field = recipe.encode(model, pixels, options.encoding(), encode_step)
    stopwatch.lap("encode")

    facts: dict[str, float] = {}
    mesh = extract_mesh(field, options.resolution, options.threshold, options.dense, report, timings, facts)
    mesh.rounding = recipe.ROUNDING
    stopwatch.lap("mesh")
    turn = recipe.to_output_frame
    if family.makes_colours:
        camera = recipe.photo_camera(options.camera_distance)
        colouring = model_colouring(field.colours, canvas, camera, turn, options.mirror_photo)
    else:  # a shape only: coloured from the photo through a camera fitted to it
        report("surface", 0.0, "fitting a camera to the photo")
        colouring = shape_colouring(mesh, canvas, turn, options.photo_texture is not False, options.mirror_photo)
        facts["camera_overlap"], facts["photo_laid"] = colouring.overlap, float(colouring.photo is not None)
        report("surface", 0.0, f"the photo fits the shape with an overlap of {colouring.overlap:.2f}")
        mesh.colours = colouring.base(mesh.vertices, report.span("surface", 0.0, 0.0))
        stopwatch.lap("fill")
    if options.finishes_surface:
        mesh = finish_surface(mesh, options, colouring, report, timings)
        stopwatch.lap("surface")
    elif colouring.photo is not None:
        report("surface", 0.0, "the photo on the front")
        mesh.colours = colouring.vertex_colours(mesh, mesh.colours)
        stopwatch.lap("photo")
    mesh.vertices = turn(mesh.vertices)  # every step above works in the model's own frame
    if mesh.normals is not None:
        mesh.normals = turn(mesh.normals)
    timings["total"] = stopwatch.total()
    return Result(mesh=mesh, model_dir=folder, device=str(device), timings=timings, facts=facts)
