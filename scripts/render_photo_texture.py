"""Before/after pictures of the photo texture: a textured object made from a photo without
and with the photo on the front, each drawn from the source camera's side and from 60
degrees round, side by side in one PNG (the README's).

    python scripts/render_photo_texture.py PHOTO OUT.png [--weights MODEL_FOLDER]

Without ``--weights`` the object is the tests' model shaped into a compact body (random
weights: real models are not on this machine), so its geometry is a rounded lump: what
the picture shows is where the photo goes, how it fades into the model's colours and that
the back keeps them. The drawing is a small software renderer (nearest triangle last,
texture looked up per pixel, lit from the camera).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openlrm_blender.engine import Options  # noqa: E402
from openlrm_blender.engine.geometry.normals import vertex_normals  # noqa: E402
from openlrm_blender.engine.geometry.raster import barycentric, triangle_ids  # noqa: E402
from openlrm_blender.engine.pipeline import generate  # noqa: E402
from openlrm_blender.engine.surface.photo import SourceCamera  # noqa: E402

CAMERA = SourceCamera(2.0, 0.75)


def draw(mesh, degrees: float, size: int) -> np.ndarray:
    """The textured mesh seen from the source camera turned ``degrees`` about the up axis."""
    turn = np.radians(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    vertices, normals = mesh.vertices @ rotation.T, vertex_normals(mesh.vertices, mesh.faces) @ rotation.T
    u, v, depth = CAMERA.project(vertices)
    x, y = u * size - 0.5, v * size - 0.5
    front = triangle_ids(x, y, mesh.faces, size, order=np.argsort(-depth[mesh.faces].mean(axis=1)))
    rows, columns = np.nonzero(front >= 0)
    corners = mesh.faces[front[rows, columns]]
    weights = np.clip(barycentric(x[corners], y[corners], columns.astype(float), rows.astype(float)), 0, None)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    uv = np.einsum("nk,nkd->nd", weights, mesh.uvs[corners])
    normal = np.einsum("nk,nkd->nd", weights, normals[corners])
    light = np.clip(-normal[:, 1] / np.maximum(np.linalg.norm(normal, axis=1), 1e-12), 0, 1)
    side = mesh.texture.shape[0]
    texel = np.clip(((1 - uv[:, 1]) * side).astype(int), 0, side - 1), np.clip((uv[:, 0] * side).astype(int), 0, side - 1)
    image = np.full((size, size, 3), 60, dtype=np.float32)
    image[rows, columns] = mesh.texture[texel] * (0.35 + 0.65 * light[:, None])
    return image.astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--weights", type=Path, help="a model folder (default: the tests' object model)")
    parser.add_argument("--size", type=int, default=320, help="pixels per picture side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights
        if weights is None:
            from openlrm_blender.engine.models.openlrm.config import ModelConfig
            from tests.conftest import reduced
            from tests.support.random_models import object_model, save_model

            raw = reduced("small")
            weights = save_model(object_model(ModelConfig.from_dict(raw)), Path(scratch) / "object", raw)
        common = dict(weights_dir=weights, textured=True, texture_size=1024, faces=40000, remove_background=False,
                      smooth_iterations=10, min_piece=0.01)
        if args.weights is None:
            common.update(input_size=56, resolution=128)
        pictures = []
        for photo in (False, True):
            mesh = generate(args.photo, Options(**common, photo_texture=photo)).mesh
            pictures.append(np.hstack([draw(mesh, 0, args.size), draw(mesh, 60, args.size), draw(mesh, 180, args.size)]))
    Image.fromarray(np.vstack(pictures)).save(args.output)
    print(f"{args.output}: top without the photo texture, below with it; front, 60 degrees round, back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
