"""The photo texture as a user sees it: the pipeline's textured GLB imported by Blender's own
glTF importer and rendered by Blender (Workbench: flat light, the texture's colour, the
Standard view transform, the image's own filtering) from the model's source camera, and
compared with the photo pixel by pixel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from openlrm_blender.engine import Options
from openlrm_blender.engine.camera import SourceCamera
from openlrm_blender.engine.export.mesh_files import write_mesh
from openlrm_blender.engine.geometry.marching_cubes import marching_cubes
from openlrm_blender.engine.geometry.normals import face_normals, unit
from openlrm_blender.engine.input.prepare import cut_out, photo_canvas
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.pipeline import generate
from openlrm_blender.engine.progress import Reporter
from openlrm_blender.engine.result import Mesh
from openlrm_blender.engine.surface.colouring import model_colouring
from openlrm_blender.engine.surface.finish import Finish, finish_surface
from openlrm_blender.engine.surface.photo import MASK_FEATHER, feathered_mask
from tests.support.glb import accessor, read_glb, textured_mesh
from tests.support.source_view import source_view

pytest.importorskip("bpy", reason="Blender as a Python module (bpy) renders the pictures")
photographs = pytest.importorskip("skimage.data", reason="scikit-image's photographs are in requirements-test.txt")

from tests.support.blender_render import render_glb  # noqa: E402

SIZE = 600
CAMERA = SourceCamera(2.0, 0.75)  # OpenLRM's source camera at the default distance
OFF = 32 / 255  # a pixel this far off the photo in any channel is a visible fault
MESH = dict(input_size=56, resolution=192, textured=True, texture_size=1024, faces=20000)


def disc_photo(name: str, folder: Path) -> Path:
    """One of scikit-image's photographs with a disc cut out of it as the object's mask."""
    pixels = getattr(photographs, name)()
    height, width = pixels.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width]
    disc = (columns - width / 2) ** 2 + (rows - height / 2) ** 2 < (0.45 * min(height, width)) ** 2
    path = folder / f"{name}.png"
    Image.fromarray(np.dstack([pixels, disc * 255]).astype(np.uint8), "RGBA").save(path)
    return path


def photo_seen_by_camera(photo: Path) -> tuple[np.ndarray, np.ndarray]:
    """The prepared photo at each render pixel's centre (bilinear, as the photo stage samples
    it) and where the photo stage gives it full weight (inside the mask's feathered edge)."""
    canvas = photo_canvas(cut_out(read_rgba(photo)), True, 0.8)
    feather = max(1, round(MASK_FEATHER * canvas.shape[0]))
    layers = np.dstack([canvas[..., :3], feathered_mask(canvas[..., 3], feather)])
    tensor = torch.from_numpy(np.ascontiguousarray(layers)).permute(2, 0, 1)[None]
    seen = F.interpolate(tensor, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    return seen[..., :3], seen[..., 3] > 0.999


def facing_pixels(glb: Path, by_faces: bool = False) -> np.ndarray:
    """Pixels whose surface faces the camera (cosine at least 0.5, by the GLB's own normals, or
    with ``by_faces`` by each triangle's own), one pixel in from where they stop facing it."""
    mesh = textured_mesh(glb)
    document, binary = read_glb(glb.read_bytes())
    stored = accessor(document, binary, document["meshes"][0]["primitives"][0]["attributes"]["NORMAL"])
    normals = np.stack([stored[:, 0], -stored[:, 2], stored[:, 1]], axis=1)  # glTF is +Y up
    view = source_view(mesh["vertices"], mesh["faces"], normals, CAMERA, SIZE)
    if by_faces:
        view.normals = unit(face_normals(mesh["vertices"], mesh["faces"]))[view.triangle]
    cosine = np.einsum("nd,nd->n", view.normals, CAMERA.towards(view.points))
    facing = view.image(cosine >= 0.5, False)
    padded = np.pad(facing, 1)
    return facing & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


@pytest.fixture(scope="module")
def renders(object_model_dir, tmp_path_factory) -> dict[str, dict]:
    """For two photographs, with and without the photo texture: Blender's render and what to
    compare it with."""
    folder = tmp_path_factory.mktemp("renders")
    found = {}
    for name in ("astronaut", "coffee"):
        photo = disc_photo(name, folder)
        reference, full_weight = photo_seen_by_camera(photo)
        for photo_texture in (True, False):
            glb = folder / f"{name}-{photo_texture}.glb"
            write_mesh(
                generate(photo, Options(weights_dir=object_model_dir, photo_texture=photo_texture, **MESH)).mesh, glb
            )
            render = render_glb(glb, CAMERA, SIZE, folder)
            compared = facing_pixels(glb) & full_weight & (render[..., 3] > 0.99)
            difference = np.abs(render[..., :3] - reference).max(axis=2)
            found[f"{name}-{photo_texture}"] = dict(compared=compared, difference=difference)
    return found


def off_the_photo(difference: np.ndarray, compared: np.ndarray) -> float:
    """The share of the compared pixels more than 32/255 off the photo (``difference``: the
    largest of each pixel's channels')."""
    return float(((difference > OFF) & compared).sum() / compared.sum())


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_no_seams_on_the_front_in_blenders_render(renders, name):
    """At most 0.2% of the camera-facing pixels more than 32/255 off the photo: the charts'
    borders carry the photo as their insides do."""
    found = renders[f"{name}-True"]
    compared, difference = found["compared"], found["difference"]
    share = off_the_photo(difference, compared)
    print(f"{name}: {compared.sum()} camera-facing pixels, median {np.median(difference[compared]) * 255:.2f}/255, "
          f"{round(share * compared.sum())} ({share:.3%}) more than 32/255 off the photo")  # fmt: skip
    assert compared.sum() > 0.1 * SIZE * SIZE
    assert np.median(difference[compared]) <= 2 / 255 and share <= 0.002


def test_the_photo_texture_is_what_makes_the_render_match(renders):
    """Without it the same render is the model's own colours: far off the photo."""
    for name in ("astronaut", "coffee"):
        with_photo, without = renders[f"{name}-True"], renders[f"{name}-False"]
        error = {
            key: float(found["difference"][found["compared"]].mean())
            for key, found in (("with", with_photo), ("without", without))
        }
        print(
            f"{name}: mean error with the photo texture {error['with'] * 255:.1f}/255, "
            f"without {error['without'] * 255:.1f}/255"
        )
        assert error["with"] < 0.25 * error["without"]


def terraced_mesh(grid: int = 192) -> tuple[Mesh, Callable]:
    """Five boxes stacked toward the camera, each smaller than the one behind it: a front that
    steps back four times on every side, meshed by marching cubes as a model's field is (which
    cuts each crease into a strip of narrow faces at 45 degrees), and a smooth colour field."""
    axis = np.linspace(-1.0, 1.0, grid + 1, dtype=np.float32)
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    outside = np.full(points.shape[:3], np.inf, dtype=np.float32)
    for step in range(5):
        centre = np.array([0.0, 0.25 - 0.07 * step, 0.0], dtype=np.float32)
        half = np.array([0.62 - 0.11 * step, 0.3, 0.62 - 0.11 * step], dtype=np.float32)
        beyond = np.abs(points - centre) - half  # a box's signed distance
        box = np.linalg.norm(np.maximum(beyond, 0.0), axis=-1) + np.minimum(beyond.max(axis=-1), 0.0)
        outside = np.minimum(outside, box)
    vertices, faces = marching_cubes(-outside, 0.0)
    vertices = (vertices * 2.0 / grid - 1.0).astype(np.float32)

    def colours(at: np.ndarray, step=None) -> np.ndarray:
        x, y, z = at.astype(np.float64).T
        waves = np.stack([np.sin(3 * x + 1), np.sin(4 * z), np.cos(3 * y + 2 * x)], axis=1)
        return (0.5 + 0.35 * waves).astype(np.float32)

    return Mesh(vertices, faces.astype(np.int32), colours(vertices)), colours


@pytest.fixture(scope="module")
def terraced_renders(tmp_path_factory) -> dict[str, dict[bool, tuple[int, float]]]:
    """For two photographs on the terraced shape (the colour field as the model's, the camera
    OpenLRM's, the surface stage as a run's), the front by the GLB's normals (False) and by the
    faces' own (True): its pixels in Blender's render and the share of them off the photo."""
    folder = tmp_path_factory.mktemp("terraced")
    mesh, colours = terraced_mesh()
    found = {}
    for name in ("astronaut", "coffee"):
        photo = disc_photo(name, folder)
        canvas = photo_canvas(cut_out(read_rgba(photo)), True, 0.8)
        colouring = model_colouring(colours, canvas, CAMERA, lambda points: points, False)
        finish = Finish(textured=True, texture_size=MESH["texture_size"], faces=MESH["faces"])
        glb = folder / f"terraced-{name}.glb"
        write_mesh(finish_surface(mesh, finish, colouring, Reporter(), {}), glb)
        render = render_glb(glb, CAMERA, SIZE, folder)
        reference, full_weight = photo_seen_by_camera(photo)
        difference = np.abs(render[..., :3] - reference).max(axis=2)
        found[name] = {}
        for by_faces in (False, True):
            front = facing_pixels(glb, by_faces) & full_weight & (render[..., 3] > 0.99)
            found[name][by_faces] = int(front.sum()), off_the_photo(difference, front)
    return found


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_no_seams_where_the_surface_steps(terraced_renders, name):
    """At most 0.2% of the front more than 32/255 off the photo where the surface steps,
    counting the narrow faces along each step, which face the camera though the normals of
    their corners (the risers' way) turn away from it: those faces take the photo too."""
    for by_faces, (front, share) in terraced_renders[name].items():
        print(f"{name} on the terraced shape, the front by the {'faces' if by_faces else 'GLB normals'}: "
              f"{front} pixels, {share:.3%} more than 32/255 off the photo")  # fmt: skip
        assert front > 0.1 * SIZE * SIZE and share <= 0.002
