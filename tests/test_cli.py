"""``python -m openlrm_blender.engine``: PLY and OBJ files a standard reader opens, folders, errors."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData

from openlrm_blender.engine import torch_available
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.errors import MEMORY_ADVICE
from tests.conftest import REPO, TINY_GRID, TINY_SIZE, reduced

TINY_ARGS = ["--input-size", str(TINY_SIZE), "--resolution", str(TINY_GRID), "--no-recenter", "-q"]


def test_ply_opens_with_the_right_counts_and_colours(tmp_path, tiny_dir, expected):
    out = tmp_path / "tiny.ply"
    command = [sys.executable, "-m", "openlrm_blender.engine", str(tiny_dir / "input.png"), "-o", str(out)]
    done = subprocess.run(
        [*command, "--weights", str(tiny_dir), *TINY_ARGS], check=False, cwd=REPO, capture_output=True, text=True
    )
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
    assert (
        main([str(images), "-o", str(tmp_path / "meshes"), "--format", "obj", "--weights", str(tiny_dir), *TINY_ARGS])
        == 0
    )
    written = sorted(p.name for p in (tmp_path / "meshes").iterdir())
    assert written == ["a.obj", "b.obj"]
    lines = (tmp_path / "meshes" / "a.obj").read_text().splitlines()
    vertices = [line for line in lines if line.startswith("v ")]
    faces = [line for line in lines if line.startswith("f ")]
    assert len(vertices) == len(expected["mesh_vertices"]) and len(faces) == len(expected["mesh_faces"])
    first = np.array(faces[0].split()[1:], dtype=int) - 1
    np.testing.assert_array_equal(first, expected["mesh_faces"][0])


def test_errors_are_one_line_and_exit_1(tmp_path, tiny_dir, capsys):
    assert (
        main([str(tiny_dir / "input.png"), "-o", str(tmp_path / "out.stl"), "--weights", str(tiny_dir), *TINY_ARGS])
        == 1
    )
    assert "out.stl: the output must end in .ply or .obj" in capsys.readouterr().err
    assert (
        main([str(tmp_path / "none.png"), "-o", str(tmp_path / "out.ply"), "--weights", str(tiny_dir), *TINY_ARGS]) == 1
    )
    error = capsys.readouterr().err.strip()
    assert error == f"error: {tmp_path / 'none.png'}: file not found"


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "openlrm_blender.engine", *arguments]
    return subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_an_unusable_output_is_refused_before_any_work(tmp_path, tiny_dir, capsys):
    """Checked first: a missing weights folder would otherwise be the error."""
    (tmp_path / "a-file").write_text("in the way")
    no_weights = str(tmp_path / "no-such-model")
    for output, message in (
        (
            tmp_path / "a-file" / "out.ply",
            f"{tmp_path / 'a-file'}: cannot write there: a file is in the way of this folder",
        ),
        (Path("/sys/out.ply"), "/sys: cannot write there (Permission denied)"),  # even for root
    ):
        assert main([str(tiny_dir / "input.png"), "-o", str(output), "--weights", no_weights, *TINY_ARGS]) == 1
        assert capsys.readouterr().err.strip() == f"error: {message}"


def test_a_failed_write_leaves_the_existing_file(tmp_path, tiny_dir):
    """A full disk (a 96 kB tmpfs) halfway through the PLY: the old file stays whole, no leftovers."""
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, check=False).returncode:
        pytest.skip("mounting a small tmpfs needs root allowed to mount")
    try:
        existing = disk / "out.ply"
        existing.write_bytes(b"the previous mesh")
        done = run_cli(str(tiny_dir / "input.png"), "-o", str(existing), "--weights", str(tiny_dir), *TINY_ARGS)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert (
            f"error: {existing}: cannot write the mesh (No space left on device); nothing was replaced" in done.stderr
        )
        assert existing.read_bytes() == b"the previous mesh" and sorted(os.listdir(disk)) == ["out.ply"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_images_are_checked_before_the_model_is_looked_up(tmp_path, monkeypatch, capsys):
    """A non-image with the default (Hub) model offline: the image is named at once, no Hub retries."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    assert main([str(notes), "-o", str(tmp_path / "out.ply"), "-q"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"error: {notes}: not an image file that can be read (PNG, JPEG, WebP, BMP, TIFF ...)"
    )


def test_a_batch_names_every_failure_and_finishes_the_rest(tmp_path, tiny_dir, capsys):
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(tiny_dir / "input.png", images / "x.png")
    Image.open(tiny_dir / "input.png").convert("RGB").save(images / "x.jpg")
    shutil.copy(tiny_dir / "input.png", images / "y.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "meshes"
    arguments = [str(images), "-o", str(out), "--weights", str(tiny_dir), *TINY_ARGS, "--no-remove-bg"]
    assert main(arguments) == 1
    assert sorted(p.name for p in out.iterdir()) == ["x.jpg.ply", "x.png.ply", "y.ply"]  # x.* do not overwrite
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith(f"error: {images / 'broken.png'}: ") and errors[-1] == "1 of 4 images failed"
    # An engine error that does not name the image gets its name in front.
    assert main([*arguments, "--threshold", "50"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert f"error: {images / 'y.png'}: no surface: the density never crosses the threshold 50" in "\n".join(errors)
    assert errors[-1] == "4 of 4 images failed"


def test_format_for_a_single_file(tmp_path, tiny_dir, capsys):
    arguments = [str(tiny_dir / "input.png"), "--weights", str(tiny_dir), *TINY_ARGS]
    assert main([*arguments, "-o", str(tmp_path / "mesh"), "--format", "obj"]) == 0
    assert (tmp_path / "mesh.obj").read_text().startswith("# made by OpenLRM")
    assert main([*arguments, "-o", str(tmp_path), "--format", "obj"]) == 0  # a folder: named after the image
    assert (tmp_path / "input.obj").is_file()
    assert main([*arguments, "-o", str(tmp_path / "mesh.ply"), "--format", "obj"]) == 1
    assert "mesh.ply: the output's suffix and --format obj disagree" in capsys.readouterr().err


def test_outputs_get_a_plain_files_permissions(tmp_path):
    import stat

    from openlrm_blender.engine import Mesh
    from openlrm_blender.engine.export.mesh_files import write_mesh

    mesh = Mesh(np.zeros((3, 3), np.float32), np.array([[0, 1, 2]], np.int32), np.zeros((3, 3), np.float32))
    write_mesh(mesh, tmp_path / "x.ply")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.ply").stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.skipif(not torch_available(), reason="the real pipeline needs PyTorch")
def test_out_of_memory_is_one_sentence_and_leaves_no_file(tmp_path):
    """A grid of 1024 on a field dense everywhere needs over 4 GB at once: under a 3.5 GB
    address-space cap PyTorch's allocation fails, and the command line says so in words."""
    from tests.support.random_models import save_random_model

    model = save_random_model(tmp_path / "model", reduced("small"), seed=3)
    out = tmp_path / "out"
    out.mkdir()
    cap = 3584 * 2**20
    command = [sys.executable, "-m", "openlrm_blender.engine", str(REPO / "examples" / "tiny" / "input.png")]
    command += ["-o", str(out / "mesh.ply"), "--weights", str(model), "--resolution", "1024", "--no-recenter", "-q"]
    done = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=900,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
    )  # fmt: skip
    print(done.stderr)
    assert done.returncode == 1
    error = done.stderr.strip()
    assert error.startswith(f"error: {REPO / 'examples' / 'tiny' / 'input.png'}: out of memory: the run needed"), error
    assert error.endswith(MEMORY_ADVICE) and "\n" not in error and "Traceback" not in error
    assert os.listdir(out) == []  # no mesh, no temporary file


@pytest.mark.skipif(not torch_available(), reason="a real allocation failure comes from PyTorch's allocator")
def test_out_of_memory_on_one_image_of_a_batch_lets_the_rest_go_on(tmp_path, tiny_dir, monkeypatch, capsys):
    import torch

    from openlrm_blender.engine.batch import convert

    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "huge.png", "z.png"):
        shutil.copy(tiny_dir / "input.png", images / name)
    real_generate = convert.generate

    def generate(image, options, **arguments):
        if image.name == "huge.png":
            torch.empty(2**50, dtype=torch.uint8)  # PyTorch's own allocator refuses a petabyte
        return real_generate(image, options, **arguments)

    monkeypatch.setattr(convert, "generate", generate)
    out = tmp_path / "meshes"
    assert main([str(images), "-o", str(out), "--weights", str(tiny_dir), *TINY_ARGS, "--no-remove-bg"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.ply", "z.ply"]
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith(
        f"error: {images / 'huge.png'}: out of memory: the run needed more memory than was free ("
    )
    assert errors[0].endswith(MEMORY_ADVICE) and errors[-1] == "1 of 3 images failed"


def test_skip_existing_converts_only_the_missing_outputs(tmp_path, tiny_dir, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(tiny_dir / "input.png", images / name)
    out = tmp_path / "meshes"
    out.mkdir()
    (out / "a.ply").write_bytes(b"made by an earlier run")
    assert (
        main([str(images), "-o", str(out), "--weights", str(tiny_dir), *TINY_ARGS, "--no-remove-bg", "--skip-existing"])
        == 0
    )
    assert (out / "a.ply").read_bytes() == b"made by an earlier run"
    assert PlyData.read(str(out / "b.ply"))["vertex"].count > 0
    assert "1 of 2 outputs already there: skipped" in capsys.readouterr().err


def test_a_write_cut_short_leaves_no_temporary_file(tmp_path, monkeypatch):
    from openlrm_blender.engine.export import mesh_files
    from openlrm_blender.engine.result import Mesh

    def interrupted(mesh, path):
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(mesh_files, "write_ply", interrupted)
    mesh = Mesh(np.zeros((3, 3), np.float32), np.array([[0, 1, 2]]), np.zeros((3, 3), np.float32))
    with pytest.raises(KeyboardInterrupt):
        mesh_files.write_mesh(mesh, tmp_path / "x.ply")
    assert list(tmp_path.iterdir()) == []
