"""``python -m openlrm_blender.engine``: PLY and OBJ files a standard reader opens, folders, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
from plyfile import PlyData

from openlrm_blender.engine.cli import main

from .conftest import REPO, TINY_GRID, TINY_SIZE

TINY_ARGS = ["--input-size", str(TINY_SIZE), "--grid", str(TINY_GRID), "--no-recenter", "-q"]


def test_ply_opens_with_the_right_counts_and_colours(tmp_path, tiny_dir, expected):
    out = tmp_path / "tiny.ply"
    command = [sys.executable, "-m", "openlrm_blender.engine", str(tiny_dir / "input.png"), "-o", str(out)]
    done = subprocess.run(command + ["--weights", str(tiny_dir), *TINY_ARGS], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(expected['mesh_vertices'])} vertices, {len(expected['mesh_faces'])} faces" in done.stdout
    ply = PlyData.read(str(out))
    vertex, face = ply["vertex"], ply["face"]
    assert vertex.count == len(expected["mesh_vertices"]) and face.count == len(expected["mesh_faces"])
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    np.testing.assert_allclose(xyz, expected["mesh_vertices"], atol=1e-4)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(int)
    assert np.abs(rgb - expected["mesh_vertex_colors"]).max() <= 1
    np.testing.assert_array_equal(np.stack(face["vertex_indices"]), expected["mesh_faces"])


def test_obj_and_folders(tmp_path, tiny_dir, expected):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(tiny_dir / "input.png", images / name)
    (images / "notes.txt").write_text("not an image")
    assert main([str(images), "-o", str(tmp_path / "meshes"), "--format", "obj", "--weights", str(tiny_dir), *TINY_ARGS]) == 0
    written = sorted(p.name for p in (tmp_path / "meshes").iterdir())
    assert written == ["a.obj", "b.obj"]
    lines = (tmp_path / "meshes" / "a.obj").read_text().splitlines()
    vertices = [line for line in lines if line.startswith("v ")]
    faces = [line for line in lines if line.startswith("f ")]
    assert len(vertices) == len(expected["mesh_vertices"]) and len(faces) == len(expected["mesh_faces"])
    first = np.array(faces[0].split()[1:], dtype=int) - 1
    np.testing.assert_array_equal(first, expected["mesh_faces"][0])


def test_errors_are_one_line_and_exit_1(tmp_path, tiny_dir, capsys):
    assert main([str(tiny_dir / "input.png"), "-o", str(tmp_path / "out.stl"), "--weights", str(tiny_dir), *TINY_ARGS]) == 1
    assert "out.stl: the output must end in .ply or .obj" in capsys.readouterr().err
    assert main([str(tmp_path / "none.png"), "-o", str(tmp_path / "out.ply"), "--weights", str(tiny_dir), *TINY_ARGS]) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"error: {tmp_path / 'none.png'}: file not found"
