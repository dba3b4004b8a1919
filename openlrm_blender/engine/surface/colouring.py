"""Where a surface's colours come from, for vertices and texels alike.

A model that makes colours: its colour field, with the photo on the part it shows (through
the camera the model assumes, or one fitted to the shape's silhouette where it assumes none:
TRELLIS). A model that makes none (TripoSG): the photo laid on the shape through a camera
fitted to its silhouette, continued over the rest of the shape by diffusion (``fill``);
where the fit is poor, the photo would land on the wrong parts, so the shape takes the
photo's colours by height instead.

The surface stages work in the model's own frame; the photo in ours (``turn`` maps one to the
other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..camera import Camera
from ..geometry.normals import own_and_neighbourhood_normals
from ..models.recipe import ColourField, ModelOutput, Turn
from ..progress import Reporter
from ..result import Mesh
from .camera_fit import fit_camera
from .fill import HeightColours, photo_fill
from .photo import Photo, Visibility

MIN_OVERLAP = 0.8  # a fitted camera whose silhouette overlaps the mask less is not trusted


@dataclass
class Colouring:
    base: ColourField  # the colours before the photo: the model's, or those grown from the photo
    photo: Photo | None  # laid on the part it shows, where asked
    turn: Turn
    mirror: bool = False  # the photo's mirror image on the back too (symmetric objects)
    overlap: float | None = None  # a fitted camera's match with the photo's mask
    _seen: tuple = field(default=(None, None, None), repr=False)  # the last mesh's arrays and its depth test

    def visibility(self, mesh_vertices: np.ndarray, faces: np.ndarray) -> Visibility:
        """The photo's depth test for a mesh of the model's frame, made once per mesh (drawing
        half a million faces takes a second)."""
        if self._seen[0] is not mesh_vertices or self._seen[1] is not faces:
            depth_test = Visibility(self.turn(mesh_vertices), faces, self.photo.camera, device=self.photo.device)
            self._seen = (mesh_vertices, faces, depth_test)
        return self._seen[2]

    def photographed(
        self, mesh_vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, normals: np.ndarray, base: np.ndarray
    ) -> np.ndarray:
        """The ``base`` colours at ``points`` of the mesh (model frame; ``normals`` (N, 3) or
        (N, K, 3)) with the photo on the part it shows."""
        if self.photo is None:
            return base
        turned = self.turn(normals.reshape(-1, 3)).reshape(normals.shape)
        return self.photo.blend(self.turn(points), turned, base, self.visibility(mesh_vertices, faces), self.mirror)

    def vertex_colours(self, mesh: Mesh, base: np.ndarray) -> np.ndarray:
        """A mesh's vertices' colours, from their ``base`` colours."""
        normals = own_and_neighbourhood_normals(mesh.vertices, mesh.faces)
        return self.photographed(mesh.vertices, mesh.faces, mesh.vertices, normals, base)


def model_colouring(
    field: ColourField,
    canvas: np.ndarray | None,
    camera: Camera,
    turn: Turn,
    mirror: bool,
    device: torch.device | None = None,
) -> Colouring:
    """A model that makes colours: the photo (``canvas``, None: not asked for) on top."""
    return Colouring(field, None if canvas is None else Photo(canvas, camera, device), turn, mirror)


def shape_colouring(
    mesh: Mesh, canvas: np.ndarray, turn: Turn, project: bool, mirror: bool, device: torch.device | None = None
) -> Colouring:
    """A shape the model made without colours, coloured from its photo: a camera fitted to it,
    the photo laid on where the fit is good and ``project`` allows, grown over the rest."""
    vertices = turn(mesh.vertices)
    camera, overlap = fit_camera(vertices, mesh.faces, canvas[..., 3], device=device)
    if project and overlap >= MIN_OVERLAP:
        colouring = Colouring(None, Photo(canvas, camera, device), turn, mirror, overlap)
        fill = photo_fill(
            vertices, mesh.faces, colouring.photo, colouring.visibility(mesh.vertices, mesh.faces), mirror
        )
        colouring.base = lambda points, step: fill.colours_at(turn(points))
        return colouring
    heights = HeightColours(canvas, vertices, device)
    return Colouring(lambda points, step: heights.colours_at(turn(points)), None, turn, overlap=overlap)


def surface_colouring(
    made: ModelOutput,
    mesh: Mesh,
    canvas: np.ndarray | None,
    turn: Turn,
    photo: bool | None,
    mirror: bool,
    report: Reporter,
    facts: dict[str, float],
    device: torch.device | None = None,
) -> Colouring:
    """Where a model's mesh takes its colours: the model's own with the photo (``canvas``;
    None: not asked for) through the model's camera or one fitted to the shape, or the photo
    alone for a shape. ``photo`` False: never the photo's pixels (a shape then takes its
    colours by height). What a fit found goes into ``facts``. The photo's work runs on
    ``device`` (None: the CPU)."""
    if made.camera is not None or (canvas is None and made.colours is not None):
        return model_colouring(made.colours, canvas, made.camera, turn, mirror, device)
    report("surface", 0.0, "fitting a camera to the photo")
    if made.colours is None:
        colouring = shape_colouring(mesh, canvas, turn, photo is not False, mirror, device)
    else:
        camera, overlap = fit_camera(
            turn(mesh.vertices), mesh.faces, canvas[..., 3], turned=made.view_turns, device=device
        )
        laid = overlap >= MIN_OVERLAP and photo is not False
        colouring = model_colouring(made.colours, canvas if laid else None, camera, turn, mirror, device)
        colouring.overlap = overlap
    facts["camera_overlap"], facts["photo_laid"] = colouring.overlap, float(colouring.photo is not None)
    report("surface", 0.0, f"the photo fits the shape with an overlap of {colouring.overlap:.2f}")
    return colouring
