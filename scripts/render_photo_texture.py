"""Before/after pictures of the photo texture, rendered by Blender: a textured object made
from a photo without and with the photo on the front, seen from the source camera, from 60
degrees round and from behind, side by side in one PNG (the README's).

    python scripts/render_photo_texture.py PHOTO OUT.png [--weights MODEL_FOLDER]

Without ``--weights`` the object is the tests' model shaped into a compact body (random
weights: real models are not on this machine), so its geometry is a rounded lump: what
the picture shows is where the photo goes, how it fades into the model's colours and that
the back keeps them. Each GLB is imported by Blender's glTF importer and rendered by
Workbench (studio light, the texture's colours) in Blender as a Python module.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openlrm_blender.engine import Options
from openlrm_blender.engine.camera import SourceCamera
from openlrm_blender.engine.export.mesh_files import write_mesh
from openlrm_blender.engine.pipeline import generate
from tests.support.blender_render import render_glb

CAMERA = SourceCamera(2.0, 0.75)
BACKGROUND = 60 / 255


def views(glb: Path, size: int, scratch: Path) -> list[np.ndarray]:
    """RGBA renders from the front, 60 degrees round and behind."""
    return [render_glb(glb, CAMERA, size, scratch, turn_degrees=turn, light="STUDIO") for turn in (0, 60, 180)]


def framed(rows: list[list[np.ndarray]], margin: int = 8) -> np.ndarray:
    """The renders cut to the box round the object in all of them, on grey, in a grid."""
    covered = np.any([rgba[..., 3] > 0 for row in rows for rgba in row], axis=0)
    (top, bottom), (left, right) = ((np.nonzero(covered.any(axis=1 - axis))[0][[0, -1]]) for axis in (0, 1))
    size = covered.shape[0]
    box = (
        slice(max(top - margin, 0), min(bottom + margin + 1, size)),
        slice(max(left - margin, 0), min(right + margin + 1, size)),
    )
    on_grey = [
        [rgba[box][..., :3] * rgba[box][..., 3:] + BACKGROUND * (1 - rgba[box][..., 3:]) for rgba in row]
        for row in rows
    ]
    return np.vstack([np.hstack(row) for row in on_grey])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--weights", type=Path, help="a model folder (default: the tests' object model)")
    parser.add_argument("--size", type=int, default=800, help="pixels per render's side, before cutting to the object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights
        if weights is None:
            from openlrm_blender.engine.models.openlrm.config import ModelConfig
            from tests.conftest import reduced
            from tests.support.random_models import object_model, save_model

            raw = reduced("small")
            weights = save_model(object_model(ModelConfig.from_dict(raw)), Path(scratch) / "object", raw)
        common = dict(
            weights_dir=weights,
            textured=True,
            texture_size=1024,
            faces=40000,
            remove_background=False,
            smooth_iterations=10,
            min_piece=0.01,
        )
        if args.weights is None:
            common.update(input_size=56, resolution=128)
        rows = []
        for photo in (False, True):
            glb = Path(scratch) / f"photo-{photo}.glb"
            write_mesh(generate(args.photo, Options(**common, photo_texture=photo)).mesh, glb)
            rows.append(views(glb, args.size, Path(scratch)))
    Image.fromarray(np.round(framed(rows) * 255).astype(np.uint8)).save(args.output)
    print(f"{args.output}: top without the photo texture, below with it; front, 60 degrees round, back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
