"""The photo texture as a user sees it: the pipeline's textured GLB imported by Blender's own
glTF importer and rendered by Blender (Workbench: flat light, the texture's colour, the
Standard view transform, the image's own filtering) from the model's source camera, and
compared with the photo pixel by pixel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from openlrm_blender.engine import Options
from openlrm_blender.engine.camera import SourceCamera
from openlrm_blender.engine.export.mesh_files import write_mesh
from openlrm_blender.engine.input.prepare import cut_out, photo_canvas
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.pipeline import generate
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


def facing_pixels(glb: Path) -> np.ndarray:
    """Pixels whose surface faces the camera (cosine at least 0.5, by the GLB's own normals),
    one pixel in from where they stop facing it."""
    mesh = textured_mesh(glb)
    document, binary = read_glb(glb.read_bytes())
    stored = accessor(document, binary, document["meshes"][0]["primitives"][0]["attributes"]["NORMAL"])
    normals = np.stack([stored[:, 0], -stored[:, 2], stored[:, 1]], axis=1)  # glTF is +Y up
    view = source_view(mesh["vertices"], mesh["faces"], normals, CAMERA, SIZE)
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


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_no_seams_on_the_front_in_blenders_render(renders, name):
    """At most 0.2% of the camera-facing pixels more than 32/255 off the photo: the charts'
    borders carry the photo as their insides do."""
    found = renders[f"{name}-True"]
    compared, difference = found["compared"], found["difference"]
    off = (difference > OFF) & compared
    share = off.sum() / compared.sum()
    print(f"{name}: {compared.sum()} camera-facing pixels, median {np.median(difference[compared]) * 255:.2f}/255, "
          f"{off.sum()} ({share:.3%}) more than 32/255 off the photo")  # fmt: skip
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
