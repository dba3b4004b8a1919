"""Colour for a shape the model made without any (#29): a camera fitted to the shape's
silhouette against the photo's mask, the photo laid on what it shows, the rest filled from
it by diffusion over the surface, and the mirrored photo on the back when asked; on meshes and
photos made here, then through the command line on a TripoSG folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openlrm_blender.engine.camera import OrthographicCamera
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.geometry.normals import own_and_neighbourhood_normals
from openlrm_blender.engine.geometry.raster import touches
from openlrm_blender.engine.surface.camera_fit import fit_camera
from openlrm_blender.engine.surface.fill import photo_fill
from openlrm_blender.engine.surface.photo import Photo, Visibility
from tests.support.glb import textured_mesh
from tests.test_photo import sphere

SIZE = 400


def lumpy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric body: a sphere pulled out to the right and up, so its silhouette says
    where it is and how large."""
    vertices, faces = sphere(0.5, rings=64, segments=128)
    x, y, z = vertices.T
    vertices = np.stack([x * (1.0 + 0.6 * (x > 0) * x), y * 0.8, z + 0.3 * np.maximum(x, 0) * (z > 0)], axis=1)
    return vertices.astype(np.float32) + np.float32([0.1, 0.0, -0.05]), faces


def silhouette(vertices: np.ndarray, faces: np.ndarray, camera: OrthographicCamera, size: int) -> np.ndarray:
    """The shape's mask seen through ``camera`` on a size x size canvas."""
    u, v, _ = camera.project(vertices)
    covered = np.zeros(size * size, dtype=bool)
    for touched in touches(u * size - 0.5, v * size - 0.5, faces, size, 0.0):
        covered[touched.pixel] = True
    return covered.reshape(size, size)


def photo_of(mask: np.ndarray, colour_of_pixel) -> np.ndarray:
    """An RGBA canvas: ``colour_of_pixel(u, v)`` inside the mask."""
    centres = (np.arange(mask.shape[0]) + 0.5) / mask.shape[0]
    u, v = np.meshgrid(centres, centres)
    rgb = colour_of_pixel(u, v)
    return np.dstack([rgb, mask]).astype(np.float32)


def test_the_fit_finds_the_view_the_mask_was_made_with():
    vertices, faces = lumpy()
    true = OrthographicCamera(0.62, 0.47, 0.55)
    mask = silhouette(vertices, faces, true, SIZE)
    camera, overlap = fit_camera(vertices, faces, mask.astype(np.float32))
    print(
        f"fitted scale {camera.scale:.4f} (true {true.scale}), origin ({camera.u0:.4f}, {camera.v0:.4f}), "
        f"overlap {overlap:.3f}"
    )
    assert overlap > 0.97
    assert camera.scale == pytest.approx(true.scale, rel=0.02)
    assert (camera.u0, camera.v0) == pytest.approx((true.u0, true.v0), abs=0.01)


def sheared_lumpy() -> tuple[np.ndarray, np.ndarray]:
    """lumpy() sheared toward its back (+Y), so that no other turn about +Z shows the same
    outline (lumpy() alone looks the same from azimuths a and 180 - a)."""
    vertices, faces = lumpy()
    vertices[:, 0] += 0.5 * np.maximum(vertices[:, 1], 0.0)
    return vertices, faces


def test_the_turned_fit_finds_the_turn_the_mask_was_made_with():
    """TRELLIS's shape may face any way: a view turned about +Z is found with its turn."""
    vertices, faces = sheared_lumpy()
    for azimuth in (100.0, 237.0):
        true = OrthographicCamera(0.62, 0.47, 0.55, azimuth=azimuth)
        mask = silhouette(vertices, faces, true, SIZE)
        camera, overlap = fit_camera(vertices, faces, mask.astype(np.float32), turned=True)
        print(f"turned {azimuth}: fitted {camera.azimuth:.3f} degrees, scale {camera.scale:.4f}, overlap {overlap:.3f}")
        assert overlap > 0.97
        assert abs((camera.azimuth - azimuth + 180.0) % 360.0 - 180.0) < 1.5
        assert camera.scale == pytest.approx(true.scale, rel=0.02)
        assert (camera.u0, camera.v0) == pytest.approx((true.u0, true.v0), abs=0.01)


def test_the_photo_lands_through_a_turned_camera():
    """The photo is laid on through the turned camera the fit found: each front vertex takes
    the colour of where the true camera sees it."""
    vertices, faces = sheared_lumpy()
    true = OrthographicCamera(0.62, 0.47, 0.55, azimuth=100.0)
    canvas = photo_of(silhouette(vertices, faces, true, SIZE), lambda u, v: np.stack([u, v, np.full_like(u, 0.3)], -1))
    camera, _ = fit_camera(vertices, faces, canvas[..., 3], turned=True)
    photo, visibility = Photo(canvas, camera), Visibility(vertices, faces, camera)
    normals = own_and_neighbourhood_normals(vertices, faces)
    weight, _, _ = photo.weights_and_colours(vertices, normals, visibility)
    colours = photo.blend(vertices, normals, np.full((len(vertices), 3), 0.5, dtype=np.float32), visibility)
    u, v, _ = true.project(vertices)
    front = weight > 0.99
    error = np.abs(colours[front] - np.stack([u, v, np.full_like(u, 0.3)], 1)[front]).max()
    print(f"{front.mean():.1%} of the vertices photographed, colour error at most {error:.4f}")
    assert front.mean() > 0.1 and error < 0.03


def test_the_photo_lands_where_it_should_and_the_rest_is_filled_without_a_seam():
    """A photo whose colour says where on the canvas it was taken: the front's vertices take
    the colour of where the true camera sees them; the back, no photo there, is filled by
    continuing the front's colours, everywhere (no grey, no NaN) and smoothly (no jump at
    the photo's edge)."""
    vertices, faces = lumpy()
    true = OrthographicCamera(0.62, 0.47, 0.55)
    mask = silhouette(vertices, faces, true, SIZE)
    canvas = photo_of(mask, lambda u, v: np.stack([u, v, np.full_like(u, 0.3)], axis=-1))
    camera, _ = fit_camera(vertices, faces, canvas[..., 3])
    photo = Photo(canvas, camera)
    visibility = Visibility(vertices, faces, camera)
    fill = photo_fill(vertices, faces, photo, visibility)
    normals = own_and_neighbourhood_normals(vertices, faces)
    weight, _, _ = photo.weights_and_colours(vertices, normals, visibility)
    colours = photo.blend(vertices, normals, fill.colours_at(vertices), visibility)
    u, v, _ = true.project(vertices)
    front = weight > 0.99
    expected = np.stack([u, v, np.full_like(u, 0.3)], axis=1)
    assert front.mean() > 0.2 and np.abs(colours[front] - expected[front]).max() < 0.03
    assert np.isfinite(colours).all() and (colours[:, 2] > 0.25).all() and (colours[:, 2] < 0.35).all()
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    steps = np.abs(colours[edges[:, 0]] - colours[edges[:, 1]]).max(axis=1)
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    beyond = steps - 0.62 * lengths  # the photo's own colours change 0.62 per unit of length at most
    print(f"largest colour step along an edge beyond the photo's own gradient: {beyond.max():.3f}")
    assert beyond.max() < 0.03  # no seam anywhere: where the photo ends, the fill goes on from it


@pytest.mark.parametrize("azimuth", [0.0, 60.0])
def test_the_mirrored_photo_colours_the_back_of_a_symmetric_object(azimuth):
    """A sphere photographed with a left-red, right-blue front: with the mirror, each back
    vertex takes the colour of its mirror image on the front; without, the fill's blend. The
    mirror is square to the view, turned or not."""
    vertices, faces = sphere(0.5, rings=64, segments=128)
    camera = OrthographicCamera(0.8, azimuth=azimuth)
    turn = np.radians(azimuth)
    across = vertices[:, 0] * np.cos(turn) + vertices[:, 1] * np.sin(turn)
    ahead = vertices[:, 1] * np.cos(turn) - vertices[:, 0] * np.sin(turn)
    mask = silhouette(vertices, faces, camera, SIZE)
    canvas = photo_of(mask, lambda u, v: np.stack([u < 0.5, np.zeros_like(u), u >= 0.5], axis=-1).astype(np.float32))
    photo = Photo(canvas, camera)
    normals = own_and_neighbourhood_normals(vertices, faces)
    visibility = Visibility(vertices, faces, camera)
    back = (ahead > 0.2) & (np.abs(across) > 0.1)
    for mirror in (True, False):
        fill = photo_fill(vertices, faces, photo, visibility, mirror)
        colours = photo.blend(vertices, normals, fill.colours_at(vertices), visibility, mirror)
        left = across[back] < 0
        red_on_the_left = (colours[back][left, 0] > 0.9).mean()
        print(f"mirror {mirror}: {red_on_the_left:.1%} of the back's left side red")
        if mirror:
            assert red_on_the_left > 0.97 and (colours[back][~left, 2] > 0.9).mean() > 0.97
        else:
            assert red_on_the_left < 0.5  # the back is filled, not painted


# --- through the command line on a TripoSG folder ------------------------------------------


HUE = (0.85, 0.35, 0.1)


@pytest.fixture(scope="module")
def triposg_object(tmp_path_factory) -> Path:
    """The tiny TripoSG's sizes, shaped into one compact object (an ellipsoid)."""
    from tests.support.random_triposg import copy_configs, object_model, save_model
    from tests.test_triposg import VECTOR

    folder = tmp_path_factory.mktemp("triposg-object")
    return save_model(object_model(copy_configs(VECTOR, folder)), folder)


@pytest.fixture(scope="module")
def one_hue_photo(tmp_path_factory) -> Path:
    """A photo of an object of one hue (an ellipse matching the shape's front, on transparency)."""
    axis = np.linspace(-1, 1, 360)
    x, y = np.meshgrid(axis, axis)
    inside = (x / 0.75) ** 2 + (y / 0.62) ** 2 < 1
    shading = 0.85 + 0.15 * (1 - y) / 2  # a little light and shade, as photos have
    rgb = np.array(HUE)[None, None] * shading[..., None]
    path = tmp_path_factory.mktemp("photo") / "orange.png"
    Image.fromarray((np.dstack([rgb, inside]) * 255).astype(np.uint8), "RGBA").save(path)
    return path


def cli(folder: Path, photo: Path, output: Path, *extra: str) -> int:
    return main([str(photo), "-o", str(output), "--weights", str(folder), "--tokens", "64", "--steps", "2",
                 "--resolution", "96", "--device", "cpu", "-q", *extra])  # fmt: skip


def takes_the_hue(rgb: np.ndarray) -> np.ndarray:
    """Whether colours are the photo's hue (its shading allowed): the same channel ratios."""
    ratios = rgb / np.maximum(rgb.max(axis=1, keepdims=True), 1e-6)
    return np.abs(ratios - np.array(HUE) / max(HUE)).max(axis=1) < 0.08


def test_a_shape_only_model_takes_its_photos_hue_on_every_vertex(triposg_object, one_hue_photo, tmp_path):
    from plyfile import PlyData

    output = tmp_path / "object.ply"
    assert cli(triposg_object, one_hue_photo, output, "--photo-texture") == 0
    vertex = PlyData.read(str(output))["vertex"]
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1) / 255.0
    share = takes_the_hue(rgb).mean()
    print(f"{len(rgb)} vertices, {share:.2%} in the photo's hue")
    assert share >= 0.99


def test_a_shape_only_models_textured_glb_takes_its_photos_hue_front_and_back(triposg_object, one_hue_photo, tmp_path):
    """Rendered by Blender from the front and from behind: every part of the object."""
    pytest.importorskip("bpy", reason="Blender as a Python module renders the GLB")
    from tests.support.blender_render import render_glb

    output = tmp_path / "object.glb"
    assert cli(triposg_object, one_hue_photo, output, "--faces", "20000", "--texture-size", "512") == 0
    assert textured_mesh(output)["texture"].shape == (512, 512, 3)
    from openlrm_blender.engine.camera import SourceCamera

    for turn in (0, 180):
        render = render_glb(output, SourceCamera(3.0, 0.75), 400, tmp_path, turn_degrees=turn)
        covered = render[..., 3] > 0.99
        share = takes_the_hue(render[..., :3][covered]).mean()
        print(f"seen from {turn} degrees: {covered.sum()} pixels, {share:.2%} in the photo's hue")
        assert covered.sum() > 2000 and share >= 0.99
