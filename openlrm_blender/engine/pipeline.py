"""One call from an image to mesh arrays, with progress, cancellation and a model cache."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .geometry.extraction import extract_mesh, vertex_colours
from .geometry.normals import own_and_neighbourhood_normals, vertex_normals
from .input.background import get_background_remover
from .input.prepare import has_mask
from .input.read import ImageSource, read_rgba
from .models.hub import offline_default
from .models.registry import resolve_model_dir
from .models.triplane import TriplaneDecoder
from .options import Options
from .progress import CancelToken, ProgressCallback, Reporter, StepCallback, Stopwatch
from .result import Mesh, Result
from .runtime import check_precision, get_model, keep_float32_exact, pick_device, synchronise
from .surface.bake import bake_texture
from .surface.cleanup import remove_small_pieces, taubin_smooth
from .surface.photo import Photo, Visibility
from .surface.simplify import simplify
from .surface.uv import unwrap

class Photographer:
    """The photo stage for a mesh in the model's own frame (the photo works in ours)."""

    def __init__(self, photo: Photo, to_output_frame: Callable[[np.ndarray], np.ndarray]) -> None:
        self.photo, self.turn = photo, to_output_frame

    def colours(self, mesh_vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, normals: np.ndarray,
                field: np.ndarray) -> np.ndarray:  # fmt: skip
        """``field`` (the model's colours at ``points``) with the photo where it shows the mesh."""
        visibility = Visibility(self.turn(mesh_vertices), faces, self.photo.camera)
        turned = self.turn(normals.reshape(-1, 3)).reshape(normals.shape)
        return self.photo.blend(self.turn(points), turned, field, visibility)

    def vertex_colours(self, mesh: Mesh) -> np.ndarray:
        normals = own_and_neighbourhood_normals(mesh.vertices, mesh.faces)
        return self.colours(mesh.vertices, mesh.faces, mesh.vertices, normals, mesh.colours)


def finish_surface(
    mesh: Mesh, options: Options, decoder: TriplaneDecoder, planes: torch.Tensor, report: Reporter,
    timings: dict[str, float], photographer: Photographer | None = None,
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

    def colour_at(points: np.ndarray, step: StepCallback) -> np.ndarray:
        return vertex_colours(decoder, planes, points, step)

    # Vertices that moved are coloured anew; a textured mesh keeps them too (a PLY, the viewport).
    colours = colour_at(vertices, report.span("surface", 0.2, 0.3)) if moved or options.smooth_iterations else mesh.colours[kept]
    if not options.textured:
        finished = Mesh(vertices=vertices, faces=faces, colours=colours, rounding=mesh.rounding)
        if photographer is not None:
            finished.colours = photographer.vertex_colours(finished)
            stopwatch.lap("photo")
        return finished
    report("surface", 0.3, "unwrapping UVs")
    unwrapped = unwrap(vertices, faces, options.texture_size)
    stopwatch.lap("unwrap")
    report("surface", 0.5, f"baking a {options.texture_size} px texture")

    photo_seconds = Stopwatch({})

    def texel_colours(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        field = colour_at(points, report.span("surface", 0.5, 0.9))
        if photographer is None:
            return field
        report("surface", 0.9, "the photo on the front")
        photo_seconds.lap("start")
        colours = photographer.colours(unwrapped.vertices, unwrapped.faces, points, normals, field)
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
        unwrapped.vertices, unwrapped.faces, colours, uvs=unwrapped.uvs, texture=texture, rounding=mesh.rounding,
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
    check_precision(device, options.dtype)
    keep_float32_exact(device, options.dtype)
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
    recipe = family.recipe()
    report("model", 1.0, f"loading the {family.title} weights from {folder.name}")
    model = get_model(folder, device, options.dtype)
    stopwatch.lap("load")

    size = recipe.input_size(model, options.input_size)
    report("preprocess", 0.0, "preparing the image")
    cut = recipe.cut_out(rgba, remover)
    pixels = recipe.model_input(cut, size, options.recenter, options.foreground_ratio)
    photographer = None
    if options.uses_photo:
        canvas = recipe.photo_canvas(cut, options.recenter, options.foreground_ratio)
        photographer = Photographer(Photo(canvas, recipe.photo_camera(options.camera_distance)), recipe.to_output_frame)
    report("preprocess", 1.0, "image ready")
    stopwatch.lap("preprocess")

    report("encode", 0.0, "encoding the image")
    def after_layer(done: int, total: int) -> None:
        synchronise(device)  # the layer's work done, not only queued
        report("encode", done / total, f"transformer layer {done}/{total}")

    planes = recipe.encode(model, pixels, options.camera_distance, after_layer=after_layer)
    stopwatch.lap("encode")

    mesh = extract_mesh(model.decoder, planes, options.resolution, options.threshold, options.dense, report, timings)
    mesh.rounding = recipe.ROUNDING
    stopwatch.lap("mesh")
    if options.finishes_surface:
        mesh = finish_surface(mesh, options, model.decoder, planes, report, timings, photographer)
        stopwatch.lap("surface")
    elif photographer is not None:
        report("surface", 0.0, "the photo on the front")
        mesh.colours = photographer.vertex_colours(mesh)
        stopwatch.lap("photo")
    mesh.vertices = recipe.to_output_frame(mesh.vertices)  # every step above works in the model's own frame
    if mesh.normals is not None:
        mesh.normals = recipe.to_output_frame(mesh.normals)
    timings["total"] = stopwatch.total()
    return Result(mesh=mesh, model_dir=folder, device=str(device), timings=timings)
