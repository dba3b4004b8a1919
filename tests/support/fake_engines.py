"""Engines the worker process runs in place of the model (``Engine("tests.support.fake_engines:NAME")``):
each behaves like one way a real run goes, in less time and with no PyTorch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from openlrm_blender.engine import EngineError, Mesh, Result
from openlrm_blender.engine.progress import STAGES as ENGINE_STAGES
from tests.support.shapes import ellipsoid

STAGES = ENGINE_STAGES[:4]  # the engine's own, less "surface" (only when asked for)


def triangle(options) -> Result:
    mesh = Mesh(
        vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32),
        faces=np.array([[0, 1, 2]], dtype=np.int32),
        colours=np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32),
    )
    return Result(mesh=mesh, model_dir=options.weights_dir or Path("."), device="cpu", timings={"total": 0.1})


def slow(
    image,
    options,
    progress,
    cancel,
    steps: int = 20,
    delay: float = 0.02,
    fail: str | None = None,
    fail_with_memory: bool = False,
) -> Result:
    """Progress through every stage, then a triangle (or, midway, ``fail`` as an engine error
    or PyTorch's allocation failure)."""
    for step in range(steps):
        time.sleep(delay)
        progress(STAGES[step * 4 // steps], (step % (steps // 4) + 1) / (steps // 4), f"step {step}")
        if fail and step == steps // 2:
            raise EngineError(fail)
        if fail_with_memory and step == steps // 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4294967296 bytes.")
    return triangle(options)


def stuck(image, options, progress, cancel, stage: str = "encode", seconds: float = 600.0) -> Result:
    """One long call that never looks at the cancel token, like a native library's."""
    progress(stage, 0.5, "in a long native call")
    time.sleep(seconds)
    return triangle(options)


def hog(image, options, progress, cancel, chunk_mb: int = 64, limit_mb: int = 8192) -> Result:
    """Takes memory (touched, so it is really used) until the system stops it, or ``limit_mb``."""
    held = []
    for taken in range(chunk_mb, limit_mb + 1, chunk_mb):
        held.append(np.ones(chunk_mb * 2**20, dtype=np.uint8))
        progress("mesh", taken / limit_mb, f"{taken} MB")
    raise EngineError(f"the memory cap was never reached ({limit_mb} MB taken)")


def crash(image, options, progress, cancel) -> Result:
    """A native library's fault: the process ends at once, with no Python error to catch."""
    progress("encode", 0.2, "about to crash")
    import ctypes

    ctypes.string_at(0)


def record_options(image, options, progress, cancel, path: str) -> Result:
    """Writes what the worker was given (options and image), for the test to read."""
    source = {"shape": list(image.shape)} if isinstance(image, np.ndarray) else {"path": str(image)}
    Path(path).write_text(json.dumps({"options": options.to_fields(), "image": source}))
    return triangle(options)


def chatty(image, options, progress, cancel) -> Result:
    """Prints to stdout, as libraries do: the replies must not be corrupted by it."""
    print("a library's chatter on stdout\n" * 100, flush=True)
    import os

    os.write(1, b"\x00\x01 raw bytes on file descriptor 1\n")
    return triangle(options)


def reads_image(image, options, progress, cancel, path: str) -> Result:
    """Reads the image as the real pipeline does first (a broken one fails the same way), and
    notes which process ran it (one worker for a whole batch)."""
    import os

    from openlrm_blender.engine.input.read import read_rgba

    read_rgba(image)
    with open(path, "a") as record:
        record.write(f"{os.getpid()} {Path(str(image)).name}\n")
    return slow(image, options, progress, cancel, steps=8, delay=0.01)


def gpu_fails(image, options, progress, cancel, marker: str) -> Result:
    """A CUDA kernel fault as PyTorch reports it; ``marker`` is written first, so a test can
    tell which process ran it."""
    Path(marker).write_text(str(__import__("os").getpid()))
    progress("encode", 0.3, "on the GPU")
    raise RuntimeError(
        "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously reported"
    )


def shape_colours(points: np.ndarray) -> np.ndarray:
    """A pattern with broad areas and soft edges: red left, blue right, lighter upwards."""
    left = 1.0 / (1.0 + np.exp(points[:, 0] / 0.05))
    height = np.clip(0.5 + points[:, 2], 0.0, 1.0)
    return np.stack([0.2 + 0.7 * left, 0.25 + 0.5 * height, 0.2 + 0.7 * (1.0 - left)], axis=1)


def shape(image, options, progress, cancel, flat: bool = False) -> Result:
    """A compact object (an ellipsoid 0.8 long, 49,500 triangles), coloured by
    ``shape_colours``, textured when asked (the engine's own UV layout and bake); ``flat``: a
    flat card instead, with no thickness. NumPy only: it runs where PyTorch is not."""
    from openlrm_blender.engine.geometry.normals import vertex_normals
    from openlrm_blender.engine.surface.bake import bake_texture
    from openlrm_blender.engine.surface.uv import unwrap

    if flat:
        side = np.linspace(-0.4, 0.4, 60)
        x, z = np.meshgrid(side, side, indexing="ij")
        vertices = np.stack([x.ravel(), np.zeros(x.size), z.ravel()], axis=1).astype(np.float32)
        cell = np.arange(59 * 60).reshape(59, 60)[:, :59].ravel()
        faces = np.concatenate([np.stack([cell, cell + 60, cell + 61], 1), np.stack([cell, cell + 61, cell + 1], 1)])
    else:
        vertices, faces = ellipsoid((0.4, 0.25, 0.3), 100, 250)
    progress("mesh", 1.0, f"{len(faces):,} triangles")
    mesh = Mesh(vertices, faces.astype(np.int32), shape_colours(vertices).astype(np.float32))
    if options.textured:
        layout = unwrap(mesh.vertices, mesh.faces, options.texture_size)
        normals = vertex_normals(mesh.vertices, mesh.faces)[layout.source]
        texture = bake_texture(
            layout.vertices, layout.faces, layout.uvs, normals, options.texture_size,
            lambda points, _: shape_colours(points),
        )  # fmt: skip
        mesh = Mesh(layout.vertices, layout.faces, mesh.colours[layout.source], layout.uvs, texture)
    return Result(mesh=mesh, model_dir=Path("."), device="cpu", timings={"total": 0.1})


def paints(
    image, mesh, options, progress, cancel, views=(), steps: int = 8, delay: float = 0.01, path: str | None = None
) -> Result:
    """Paint's stand-in: reads every photo as the real pipeline does first (a missing one fails
    the same way), goes through the stages, and colours the mesh by ``shape_colours`` of its
    vertices as given (so a test can tell the frame it was sent in), with a texture of the
    UVs' own colours (red: u, green: v) when asked; ``path`` records what it was given."""
    from openlrm_blender.engine.input.read import read_rgba

    for photo in (image, *views):
        read_rgba(photo)
    if path:
        Path(path).write_text(json.dumps({
            "vertices": np.asarray(mesh.vertices).tolist(), "faces": len(mesh.faces), "views": len(views),
            "uvs": mesh.corner_uvs is not None, "options": options.to_fields(),
        }))  # fmt: skip
    for step in range(steps):
        time.sleep(delay)
        progress(STAGES[step * 4 // steps], (step % (steps // 4) + 1) / (steps // 4), f"step {step}")
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    texture = None
    if options.textured:
        size = options.texture_size
        u, v = np.meshgrid(np.linspace(0, 1, size), np.linspace(1, 0, size))  # row 0 at the top: v = 1
        texture = np.round(np.stack([u, v, np.full_like(u, 0.5)], axis=-1) * 255).astype(np.uint8)
    painted = Mesh(vertices, np.asarray(mesh.faces, dtype=np.int32), shape_colours(vertices).astype(np.float32),
                   texture=texture, rounding="round")  # fmt: skip
    return Result(painted, Path("."), "cpu", {"total": 0.1})


def record_views(image, options, progress, cancel, path: str, views=()) -> Result:
    """Generate's stand-in that writes how many photos it was given and their shapes."""
    shapes = [list(np.asarray(photo).shape) if not isinstance(photo, (str, Path)) else str(photo)
              for photo in (image, *views)]  # fmt: skip
    Path(path).write_text(json.dumps({"photos": shapes}))
    return triangle(options)
