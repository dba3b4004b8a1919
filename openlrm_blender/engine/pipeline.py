"""One call from photos of an object to mesh arrays (``generate``), or from photos and a mesh
to its colours (``paint``), with progress, cancellation and a model cache.

Both read every photo first (a bad one fails before any model work, named), find the
background remover and the model, prepare the photos the family's way, and finish with the
surface stage; every step between works in the model's own frame, turned into ours at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import EngineError
from .geometry.extraction import extract
from .input.background import get_background_remover
from .input.mesh_file import PaintMesh, read_mesh
from .input.prepare import MaskFunction, has_mask
from .input.read import ImageSource, read_rgba
from .models.hub import offline_default
from .models.recipe import ColourField, ModelOutput, Prepared, Recipe, Settings, Turn
from .models.registry import TRELLIS, Family, family_of_folder, resolve_model_dir
from .options import Options
from .progress import CancelToken, ProgressCallback, Reporter, Stopwatch
from .result import Mesh, Result
from .runtime import check_precision, get_model, keep_float32_exact, pick_device, resolve_precision, synchronise
from .surface.colouring import Colouring, surface_colouring
from .surface.finish import bake_on_uvs, finish_surface


@dataclass
class _Model:
    family: Family
    folder: Path
    recipe: Recipe
    network: nn.Module
    settings: Settings


class _Run:
    """What every entry shares: the options checked, progress and cancel, the device, a
    stopwatch, the photos and the background remover they need."""

    def __init__(self, options: Options | None, progress: ProgressCallback | None, cancel: CancelToken | None):
        self.requested = options or Options()  # each model fills what is unset from its own published values
        self.requested.validate()
        self.options = self.requested
        self.report = Reporter(progress, cancel)
        self.timings: dict[str, float] = {}
        self.facts: dict[str, float] = {}
        self.device = pick_device(self.options.device)
        self.stopwatch = Stopwatch(self.timings, lambda: synchronise(self.device))
        self.offline = offline_default() if self.options.offline is None else self.options.offline
        self.remover: MaskFunction | None = None

    def photos(self, images: Sequence[ImageSource]) -> list[np.ndarray]:
        """Every photo read (a photo given as pixels is named by its place), and the background
        remover fetched first where one of them has no mask of its own."""
        photos = []
        for place, image in enumerate(images):
            try:
                photos.append(read_rgba(image, self.options.max_megapixels))
            except EngineError as exc:
                named = isinstance(image, (str, Path)) or len(images) == 1
                raise type(exc)(str(exc) if named else f"photo {place + 1} of {len(images)}: {exc}") from None
        if self.options.remove_background and not all(has_mask(photo) for photo in photos):
            self.report("model", 0.0, f"finding the background removal model {self.options.background_model}")
            self.remover = get_background_remover(
                self.options.background_model,
                self.offline,
                lambda done, total: self.report(
                    "model", 0.2 * done / max(total, 1),
                    f"downloading the background removal model: {done / 2**20:.0f} of {total / 2**20:.0f} MB",
                ),
            )  # fmt: skip
        return photos

    def model(self, name: str, weights_dir: Path | None) -> _Model:
        """The model's family and folder (downloaded where it must be), its published settings
        for what the run leaves unset, loaded on the run's device."""
        start = 0.2 if self.remover is not None else 0.0  # of the model stage: the remover's share
        where = f"the folder {weights_dir}" if weights_dir else f"{name} on the Hugging Face Hub"
        self.report("model", start, f"finding {where}")
        options = self.options
        family, folder = resolve_model_dir(
            name, weights_dir, revision=options.revision, token=options.token, cache_dir=options.cache_dir,
            offline=self.offline,
            progress=lambda done, total, file: self.report(
                "model", start + (1 - start) * done / max(total, 1), f"downloading {file}"
            ),
        )  # fmt: skip
        recipe = family.recipe()
        self.options = self.requested.for_family(family.settings | recipe.published_settings(folder))
        dtype = resolve_precision(options.dtype, self.device, family)
        check_precision(self.device, dtype)
        keep_float32_exact(self.device, dtype)
        self.report("model", 1.0, f"loading the {family.title} weights from {folder.name}")
        network = get_model(folder, self.device, dtype)
        self.stopwatch.lap("load")
        return _Model(family, folder, recipe, network, self.options.settings_for(family))

    def prepare(self, model: _Model, photos: list[np.ndarray], canvas: bool) -> Prepared:
        if len(photos) > 1 and not model.family.views:
            raise EngineError(f"{model.family.title} takes one photo: several photos of one object need TRELLIS")
        self.report("preprocess", 0.0, "preparing the image" if len(photos) == 1 else f"preparing {len(photos)} photos")
        prepared = model.recipe.prepare(
            model.network, [model.recipe.cut_out(photo, self.remover) for photo in photos], model.settings, canvas
        )
        self.report("preprocess", 1.0, "image ready")
        self.stopwatch.lap("preprocess")
        return prepared

    def model_work(self, work):
        """``work(report)`` with the model's own reporter: each report waits for the device, and
        each of its stages is timed."""
        report = self.report.timed(self.stopwatch, lambda: synchronise(self.device))
        done = work(report)
        report.end()
        return done

    def finish(self, mesh: Mesh, colouring: Colouring, turn: Turn, model: _Model) -> Result:
        """The surface stage as asked, then the mesh turned into our frame."""
        finish = self.options.finish()
        if finish.any:
            mesh = finish_surface(mesh, finish, colouring, self.report, self.timings)
            self.stopwatch.lap("surface")
        elif colouring.photo is not None:
            self.report("surface", 0.0, "the photo on the front")
            mesh.colours = colouring.vertex_colours(mesh, mesh.colours)
            self.stopwatch.lap("photo")
        mesh.vertices = turn(mesh.vertices)
        if mesh.normals is not None:
            mesh.normals = turn(mesh.normals)
        self.timings["total"] = self.stopwatch.total()
        return Result(mesh, model.folder, str(self.device), self.timings, self.facts)


@torch.inference_mode()
def generate(
    image: ImageSource,
    options: Options | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    views: Sequence[ImageSource] = (),
) -> Result:
    """Photo -> coloured mesh; ``views``: more photos of the same object (TRELLIS). Raises
    ``EngineError`` subclasses with one-line messages."""
    run = _Run(options, progress, cancel)
    photos = run.photos([image, *views])
    model = run.model(run.options.model, run.options.weights_dir)
    options = run.options
    painter = options.colours == "trellis" and not model.family.makes_colours
    canvas = options.uses_photo or not model.family.makes_colours
    prepared = run.prepare(model, photos, canvas)
    made = run.model_work(lambda report: model.recipe.make(model.network, prepared, model.settings, report))
    report = run.report
    mesh = extract(made.surface, made.colours, options.resolution, options.threshold, options.dense, report,
                   run.timings, run.facts)  # fmt: skip
    mesh.rounding = model.recipe.rounding
    run.stopwatch.lap("mesh")
    turn = model.recipe.to_output_frame
    if painter:  # the shape's colours from TRELLIS, painted in our frame
        made = replace(made, colours=_painted_by_trellis(run, photos, mesh, turn))
        mesh.colours = made.colours(mesh.vertices, report.span("surface", 0.0, 0.0))
    colouring = surface_colouring(made, mesh, prepared.canvas, turn, options.photo_texture, options.mirror_photo,
                                  report, run.facts, run.device)  # fmt: skip
    if colouring.base is not made.colours:  # grown from the photo: the mesh's first colours too
        mesh.colours = colouring.base(mesh.vertices, report.span("surface", 0.0, 0.0))
        run.stopwatch.lap("fill")  # the camera's fit and the fill
    else:
        run.stopwatch.lap("camera")  # its fit, where the model's camera is not known
    return run.finish(mesh, colouring, turn, model)


def _painted_by_trellis(run: _Run, photos: list[np.ndarray], mesh: Mesh, turn: Turn) -> ColourField:
    """TRELLIS's colours for a shape another model made (in that model's frame)."""
    painter = run.model(TRELLIS.published[0], run.options.painter_weights)
    if not painter.family.paints:
        raise EngineError(f"{painter.family.title} cannot paint a mesh: the colours from a model need TRELLIS")
    prepared = run.prepare(painter, photos, canvas=False)
    vertices = turn(mesh.vertices)
    field = run.model_work(
        lambda report: painter.recipe.paint(painter.network, prepared, vertices, mesh.faces, painter.settings, report)
    )
    return lambda points, step: field(turn(points), step)


@torch.inference_mode()
def paint(
    image: ImageSource,
    mesh: PaintMesh | str | Path,
    options: Options | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    views: Sequence[ImageSource] = (),
) -> Result:
    """A mesh the model did not make (a PLY, OBJ or GLB file, or arrays), its vertices and faces
    kept as they are and in their order, coloured by the model (TRELLIS) from the photos; the
    photo itself laid on the front only where ``photo_texture`` asks; a texture baked where
    ``textured`` asks, onto the mesh's own UVs."""
    run = _Run(options, progress, cancel)
    given = mesh if isinstance(mesh, PaintMesh) else _read(mesh)
    textured = run.options.textured
    if textured and given.corner_uvs is None:
        raise EngineError(
            "painting keeps the mesh as it is, and a texture needs UVs this mesh has none of: paint vertex colours, "
            "or bake in Blender, which adds UVs where a mesh has none"
        )
    photos = run.photos([image, *views])
    model = run.model(run.options.model, run.options.weights_dir)
    if not model.family.paints:
        raise EngineError(f"{model.family.title} cannot paint a mesh: painting needs TRELLIS")
    options = run.options
    prepared = run.prepare(model, photos, canvas=options.photo_texture is True)
    vertices = np.asarray(given.vertices, dtype=np.float32)
    faces = np.asarray(given.faces, dtype=np.int32)
    field = run.model_work(
        lambda report: model.recipe.paint(model.network, prepared, vertices, faces, model.settings, report)
    )
    run.report("mesh", 0.0, f"colours of {len(vertices):,} vertices")
    colours = field(vertices, run.report.span("mesh", 0.0, 1.0))
    painted = Mesh(np.asarray(given.vertices), faces, colours, rounding=model.recipe.rounding)  # as given
    run.stopwatch.lap("colours")
    made = ModelOutput(None, field, view_turns=True)  # a mesh of the user's: its photo's view is not known
    colouring = surface_colouring(made, painted, prepared.canvas, model.recipe.to_output_frame, options.photo_texture,
                                  options.mirror_photo, run.report, run.facts, run.device)  # fmt: skip
    if textured:
        painted = bake_on_uvs(painted, given.corner_uvs, options.texture_size, colouring, run.report, run.timings)
        run.stopwatch.lap("surface")
    elif colouring.photo is not None:
        run.report("surface", 0.0, "the photo on the front")
        painted.colours = colouring.vertex_colours(painted, painted.colours)
        run.stopwatch.lap("photo")
    run.timings["total"] = run.stopwatch.total()
    return Result(painted, model.folder, str(run.device), run.timings, run.facts)


def _read(path: str | Path) -> PaintMesh:
    read = read_mesh(path)
    return PaintMesh(read.vertices, read.faces)


@torch.inference_mode()
def model_output(image: ImageSource, options: Options, dtype: str) -> ModelOutput:
    """One photo with its own mask through the model of ``options.weights_dir``, no
    progress: what the benchmark counts and the device check compares across devices."""
    family = family_of_folder(options.weights_dir)
    recipe = family.recipe()
    options = options.for_family(family.settings | recipe.published_settings(options.weights_dir))
    model = get_model(options.weights_dir, pick_device(options.device), dtype)
    settings = options.settings_for(family)
    prepared = recipe.prepare(model, [recipe.cut_out(read_rgba(image), None)], settings, canvas=False)
    return recipe.make(model, prepared, settings, Reporter())
