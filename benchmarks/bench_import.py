"""Time the Blender import of a synthetic mesh (default: one million vertices).

    python benchmarks/bench_import.py [--vertices 1000000]

Needs Blender as a Python module (bpy). Prints seconds for building the mesh, the
colour attribute and the material, as one figure and per million vertices.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic_mesh(vertices: int):
    from openlrm_blender.engine import Mesh

    rng = np.random.default_rng(0)
    faces = rng.integers(0, vertices, size=(2 * vertices, 3), dtype=np.int32)
    return Mesh(
        vertices=rng.uniform(-1, 1, size=(vertices, 3)).astype(np.float32),
        faces=faces,
        colours=rng.uniform(0, 1, size=(vertices, 3)).astype(np.float32),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=1_000_000)
    args = parser.parse_args()
    import bpy

    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("openlrm_blender", default_set=True, handle_error=None)
    from openlrm_blender.addon import importer

    mesh = synthetic_mesh(args.vertices)
    started = time.perf_counter()
    obj = importer.add_object(bpy.context, "bench", mesh, smooth_shading=True)
    seconds = time.perf_counter() - started
    print(
        f"import: {len(obj.data.vertices):,} vertices, {len(obj.data.polygons):,} faces in {seconds:.2f} s "
        f"({seconds / (args.vertices / 1e6):.2f} s per million vertices)"
    )


if __name__ == "__main__":
    main()
