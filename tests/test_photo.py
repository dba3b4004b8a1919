"""The photo texture: a synthetic scene of known geometry rendered from the source camera
and projected back, the depth test, the mask's edge and the command line's switch
(``test_photo_render.py``: the whole pipeline's GLB as Blender renders it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openlrm_blender.engine.camera import SourceCamera
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.geometry.normals import vertex_normals
from openlrm_blender.engine.surface.photo import FULL_WEIGHT_DEGREES, Photo, Visibility
from tests.support.glb import textured_mesh

CAMERA = SourceCamera(2.0, 0.75)
SIZE = 512


def sphere(radius: float = 0.5, rings: int = 96, segments: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere, faces counter-clockwise seen from outside."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    vertices = np.vstack([[0, 0, 1], ring, [0, 0, -1]]) * radius
    faces = []
    for i in range(rings - 1):
        for j in range(segments):
            a, b = 1 + i * segments + j, 1 + i * segments + (j + 1) % segments
            faces += [[0, a, b]] if i == 0 else []
            if i < rings - 2:
                c, d = a + segments, b + segments
                faces += [[a, c, d], [a, d, b]]
    last = 1 + (rings - 2) * segments
    faces += [[len(vertices) - 1, last + (j + 1) % segments, last + j] for j in range(segments)]
    return vertices.astype(np.float32), np.array(faces, dtype=np.int32)


def pattern(points: np.ndarray) -> np.ndarray:
    """The scene's known colour at each point: stripes the model's field could never hold."""
    x, z = points[:, 0], points[:, 2]
    return np.stack([0.5 + 0.4 * np.sin(12 * x), 0.5 + 0.4 * np.cos(12 * z), np.full_like(x, 0.2)], axis=1)


def render_sphere(radius: float, background: tuple[float, float, float]) -> np.ndarray:
    """The sphere seen from the source camera, analytically: (SIZE, SIZE, 4), alpha its silhouette."""
    centres = (np.arange(SIZE) + 0.5) / SIZE
    u, v = np.meshgrid(centres, centres)
    direction = np.stack([(u - 0.5) / CAMERA.focal, np.ones_like(u), -(v - 0.5) / CAMERA.focal], axis=-1)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    origin = CAMERA.position
    b = direction @ origin
    disc = b**2 - (origin @ origin - radius**2)
    hit = disc > 0
    distance = -b - np.sqrt(np.where(hit, disc, 0.0))
    points = origin + direction * distance[..., None]
    canvas = np.empty((SIZE, SIZE, 4), dtype=np.float32)
    canvas[..., :3] = np.where(hit[..., None], pattern(points.reshape(-1, 3)).reshape(SIZE, SIZE, 3), background)
    canvas[..., 3] = hit
    return canvas


def cosine_to_camera(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    towards = CAMERA.position - points
    return np.einsum("nd,nd->n", normals, towards / np.linalg.norm(towards, axis=1, keepdims=True))


def test_a_rendered_scene_projected_back_gives_its_colours_on_the_front_and_keeps_the_back():
    vertices, faces = sphere()
    normals = vertex_normals(vertices, faces)
    photo = Photo(render_sphere(0.5, (0.0, 1.0, 0.0)), CAMERA)
    field = np.full((len(vertices), 3), 0.5, dtype=np.float32)
    colours = photo.blend(vertices, normals, field, Visibility(vertices, faces, CAMERA))
    cosine = cosine_to_camera(vertices, normals)
    front = cosine > np.cos(np.radians(FULL_WEIGHT_DEGREES - 10))
    error = np.abs(colours[front] - pattern(vertices[front]))
    print(f"front: {front.sum()} vertices, colour error mean {error.mean():.4f}, max {error.max():.4f}")
    assert front.sum() > 1000 and error.max() < 0.03
    back = cosine < np.cos(np.radians(115))
    assert back.sum() > 1000 and np.array_equal(colours[back], field[back])  # the model's own colours, unchanged
    assert np.isfinite(colours).all() and colours.min() >= 0 and colours.max() <= 1


def test_tensors_give_tensors_with_the_same_weights_and_colours():
    """The colouring hands the photo stage NumPy arrays, the fill tensors on its device: the
    same figures either way."""
    vertices, faces = sphere(rings=24, segments=48)
    normals = vertex_normals(vertices, faces)
    photo = Photo(render_sphere(0.5, (0.0, 1.0, 0.0)), CAMERA)
    visibility = Visibility(vertices, faces, CAMERA)
    arrays = photo.weights_and_colours(vertices, normals, visibility)
    tensors = photo.weights_and_colours(torch.from_numpy(vertices), torch.from_numpy(normals), visibility)
    assert arrays[0].max() > 0.99
    for array, tensor in zip(arrays, tensors, strict=True):
        assert isinstance(array, np.ndarray) and isinstance(tensor, torch.Tensor)
        np.testing.assert_array_equal(array, tensor.numpy())


def test_a_face_behind_another_never_receives_the_photo():
    """A small square in front of a large one, both facing the camera."""

    def square(half: float, y: float, steps: int = 64) -> tuple[np.ndarray, np.ndarray]:
        axis = np.linspace(-half, half, steps)
        x, z = np.meshgrid(axis, axis)
        vertices = np.stack([x.ravel(), np.full(x.size, y), z.ravel()], axis=1)
        index = np.arange(steps * steps).reshape(steps, steps)
        a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
        return vertices.astype(np.float32), np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])

    back, back_faces = square(0.6, 0.4)
    front, front_faces = square(0.2, -0.3)
    vertices = np.vstack([back, front])
    faces = np.vstack([back_faces, front_faces + len(back)]).astype(np.int32)
    normals = np.tile([0.0, -1.0, 0.0], (len(vertices), 1))
    canvas = np.ones((SIZE, SIZE, 4), dtype=np.float32)
    weight, _, _ = Photo(canvas, CAMERA).weights_and_colours(vertices, normals, Visibility(vertices, faces, CAMERA))
    u, v, _ = CAMERA.project(back)
    fu, fv, _ = CAMERA.project(front[[0, -1]])
    shadowed = (u > fu.min()) & (u < fu.max()) & (v > fv.min()) & (v < fv.max())
    margin = (np.abs(back[:, 0]) < 0.5) & (np.abs(back[:, 2]) < 0.5)
    hidden = shadowed & ~near(u, v, fu, fv)  # hidden by more than a texel's reach (VISIBLE_REACH_PIXELS)
    assert hidden.sum() > 100 and (weight[: len(back)][hidden] == 0).all()
    assert (weight[: len(back)][~shadowed & margin & ~near(u, v, fu, fv)] > 0.99).all()
    assert (weight[len(back) :] > 0.99).mean() > 0.95  # the front square has the photo


def near(u, v, fu, fv, pixels: float = 3.0) -> np.ndarray:
    """Points within a few pixels of the front square's outline (where the depth test may go either way)."""
    step = pixels / SIZE
    inside_grown = (u > fu.min() - step) & (u < fu.max() + step) & (v > fv.min() - step) & (v < fv.max() + step)
    inside_shrunk = (u > fu.min() + step) & (u < fu.max() - step) & (v > fv.min() + step) & (v < fv.max() - step)
    return inside_grown & ~inside_shrunk


def test_no_background_colour_reaches_the_object():
    """A white object on a pure green background, its silhouette the mask's edge."""
    vertices, faces = sphere()
    normals = vertex_normals(vertices, faces)
    canvas = render_sphere(0.5, (0.0, 1.0, 0.0))
    canvas[..., :3] = np.where(canvas[..., 3:] > 0, 1.0, canvas[..., :3])
    field = np.ones((len(vertices), 3), dtype=np.float32)
    colours = Photo(canvas, CAMERA).blend(vertices, normals, field, Visibility(vertices, faces, CAMERA))
    assert colours[:, [0, 2]].min() > 0.999  # no green mixed into any vertex, the silhouette's included


@pytest.fixture(scope="module")
def striped_photo(tmp_path_factory) -> Path:
    """A photo of an object with detail finer than the model's 64 x 64 planes: stripes on a disc."""
    axis = np.linspace(-1, 1, 640)
    x, y = np.meshgrid(axis, axis)
    disc = (x**2 + y**2) < 0.55**2
    stripes = 0.5 + 0.45 * np.sign(np.sin(40 * x))
    rgba = np.dstack([stripes, 0.3 + 0.4 * (y > 0), 1 - stripes, disc]).astype(np.float32)
    path = tmp_path_factory.mktemp("photo") / "stripes.png"
    Image.fromarray((rgba * 255).astype(np.uint8), "RGBA").save(path)
    return path


def test_the_command_line_switch(object_model_dir, striped_photo, tmp_path):
    """On by default for textured output, off with --no-photo-texture; --photo-texture for vertex colours."""
    arguments = [
        str(striped_photo),
        "--weights",
        str(object_model_dir),
        "--input-size",
        "56",
        "--resolution",
        "64",
        "-q",
    ]
    assert main([*arguments, "-o", str(tmp_path / "on.glb"), "--faces", "5000", "--texture-size", "256"]) == 0
    assert (
        main(
            [
                *arguments,
                "-o",
                str(tmp_path / "off.glb"),
                "--faces",
                "5000",
                "--texture-size",
                "256",
                "--no-photo-texture",
            ]
        )
        == 0
    )
    on, off = (textured_mesh(tmp_path / name)["texture"] for name in ("on.glb", "off.glb"))
    assert np.abs(on - off).mean() > 0.01
    assert main([*arguments, "-o", str(tmp_path / "plain.ply")]) == 0
    assert main([*arguments, "-o", str(tmp_path / "photo.ply"), "--photo-texture"]) == 0
    assert (tmp_path / "plain.ply").read_bytes() != (tmp_path / "photo.ply").read_bytes()
