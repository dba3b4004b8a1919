"""TripoSR against the published code: every array of the tiny vector, the real weights'
key layout from the real config.yaml, the checkpoint formats, a real-size model from the
Hub's cache offline and over HTTP, and the frame the mesh comes out in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.spatial import cKDTree

from openlrm_blender.engine import Options, WeightsError
from openlrm_blender.engine.errors import Offline
from openlrm_blender.engine.geometry.density_grid import dense_density_grid, surface_density_grid
from openlrm_blender.engine.geometry.extraction import extract_mesh
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.models.registry import TRIPOSR, family_of_folder, resolve_model_dir
from openlrm_blender.engine.models.triplane_field import TriplaneField
from openlrm_blender.engine.models.triposr.config import TripoSRConfig, resolve_references
from openlrm_blender.engine.models.triposr.image import prepare_image
from openlrm_blender.engine.models.triposr.model import TripoSR, to_output_frame
from openlrm_blender.engine.models.triposr.weights import REPO_ID, load_model
from openlrm_blender.engine.pipeline import generate
from openlrm_blender.engine.progress import Reporter
from tests.conftest import PARITY_DEVICE, REPO, SHARED, SPEC
from tests.support.hub import HubServer, make_hub_cache
from tests.support.random_triposr import PUBLISHED_CONFIG, THRESHOLD, object_model, save_model

VECTOR = SHARED / "vectors" / "triposr-tiny"
META = json.loads((VECTOR / "meta.json").read_text()) if (VECTOR / "meta.json").is_file() else {}


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    if not (VECTOR / "expected.npz").is_file():
        pytest.fail(f"the shared TripoSR vector is missing: {VECTOR} (set OPENLRM_SHARED)")
    with np.load(VECTOR / "expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def tiny() -> TripoSR:
    return load_model(VECTOR)


@pytest.fixture(scope="module")
def tiny_object() -> TripoSR:
    """The tiny vector's shapes, its density one compact object at the published threshold."""
    return object_model(TripoSRConfig.load(VECTOR))


@pytest.fixture(scope="module")
def planes(tiny, expected) -> torch.Tensor:
    with torch.inference_mode():
        return tiny(torch.from_numpy(expected["model_input"]).permute(2, 0, 1)[None])


def test_image_preparation(expected):
    pixels = prepare_image(read_rgba(VECTOR / "input.png"), 96)
    np.testing.assert_allclose(pixels[0].permute(1, 2, 0).numpy(), expected["model_input"], atol=1e-6)


def test_image_tokens_with_the_position_table_interpolated(tiny, expected):
    """A 96 px input is a 6x6 patch grid over a stored 4x4 table: DINO's legacy interpolation."""
    with torch.inference_mode():
        tokens = tiny.image_tokenizer(torch.from_numpy(expected["model_input"]).permute(2, 0, 1)[None])
    np.testing.assert_allclose(tokens[0].numpy(), expected["image_tokens"], atol=1e-4)


def test_triplanes(planes, expected):
    np.testing.assert_allclose(planes[0].numpy(), expected["triplanes"], atol=1e-4)


def test_queried_points(tiny, planes, expected):
    with torch.inference_mode():
        density, colour = tiny.decoder.query(planes, torch.from_numpy(expected["query_points"])[None])
    np.testing.assert_allclose(density[0, :, 0].numpy(), expected["query_density"], atol=1e-4)
    np.testing.assert_allclose(colour[0].numpy(), expected["query_color"], atol=1e-4)


def test_density_grid_dense_and_coarse_to_fine(tiny, planes, expected):
    step = Reporter().span("mesh", 0.0, 1.0)
    with torch.inference_mode():
        dense = dense_density_grid(TriplaneField(tiny.decoder, planes), META["grid"], step)
        fast = surface_density_grid(TriplaneField(tiny.decoder, planes), META["grid"], META["threshold"], step)
    np.testing.assert_allclose(dense.values, expected["density_grid"], atol=1e-4, rtol=1e-5)
    exact = fast.exact
    box = tuple(slice(o, o + n) for o, n in zip(fast.origin, fast.values.shape, strict=True))
    np.testing.assert_allclose(fast.values[exact], expected["density_grid"][box][exact], atol=1e-4, rtol=1e-5)


def test_coarse_to_fine_keeps_a_thin_band_round_an_object(tiny_object):
    """An eighth of the grid is evaluated round a rounded object (a quarter when the cells
    beside the surface whose corners come near the level without crossing it were evaluated
    too, and when the children of the cells a surface crosses, mostly near it, were taken
    for noise), and the mesh is the dense grid's."""
    with torch.no_grad():
        planes = tiny_object(torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0)))
    step = Reporter().span("mesh", 0.0, 1.0)
    grid = surface_density_grid(TriplaneField(tiny_object.decoder, planes), 160, THRESHOLD, step)
    assert grid.exact_share < 0.15
    fast = extract_mesh(TriplaneField(tiny_object.decoder, planes), 160, THRESHOLD, dense=False)
    dense = extract_mesh(TriplaneField(tiny_object.decoder, planes), 160, THRESHOLD, dense=True)
    assert len(fast.faces) > 100_000
    np.testing.assert_array_equal(fast.faces, dense.faces)
    np.testing.assert_allclose(fast.vertices, dense.vertices, atol=1e-4, rtol=0)


def assert_same_mesh(vertices, faces, colours_u8, expected) -> None:
    """Order- and winding-free: each vertex matched to its nearest expected one (a one-to-one
    match within 1e-4), the faces compared as sets of matched corners, colours within 1."""
    distance, match = cKDTree(expected["mesh_vertices"]).query(vertices)
    assert distance.max() < 1e-4 and len(np.unique(match)) == len(vertices) == len(expected["mesh_vertices"])
    ours = {tuple(sorted(face)) for face in match[faces].tolist()}
    theirs = {tuple(sorted(face)) for face in expected["mesh_faces"].tolist()}
    assert ours == theirs
    assert np.abs(colours_u8.astype(int) - expected["mesh_vertex_colors"][match].astype(int)).max() <= 1


@pytest.mark.parametrize("dense", [False, True], ids=["coarse-to-fine", "dense"])
def test_the_whole_pipeline_gives_the_published_mesh(expected, dense):
    options = Options(
        weights_dir=VECTOR, resolution=META["grid"], threshold=META["threshold"], dense=dense, device=PARITY_DEVICE
    )
    mesh = generate(VECTOR / "input.png", options).mesh
    assert mesh.rounding == "round"  # TripoSR's export rounds; OpenLRM's floors
    assert_same_mesh(mesh.vertices, mesh.faces, mesh.colours_u8, expected)


def test_the_frame_turn_puts_the_input_view_at_the_front():
    """TripoSR's input camera sits at +x (azimuth 0) with +z up: ours at -Y, Blender's front view."""
    camera_and_up = np.array([[1.9, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    turned = to_output_frame(camera_and_up)
    np.testing.assert_array_equal(
        turned, np.array([[0.0, -1.9, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    )


def read_key_table() -> dict[str, tuple[int, ...]]:
    table = {}
    for row in (SPEC / "keys-triposr.tsv").read_text().splitlines():
        if row and not row.startswith(("#", "key\t")):
            key, shape = row.split("\t")[:2]
            table[key] = tuple(int(size) for size in shape.split("x")) if shape else ()
    return table


def test_the_real_config_builds_exactly_the_real_keys(tmp_path):
    """The published config.yaml, with no vit_config.json: facebook/dino-vitb16's preset."""
    (tmp_path / "config.yaml").write_text(PUBLISHED_CONFIG)
    config = TripoSRConfig.load(tmp_path)
    assert config.vit.hidden_size == 768 and config.vit.num_hidden_layers == 12 and config.num_channels == 1024
    with torch.device("meta"):
        model = TripoSR(config)
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert ours == read_key_table()
    assert sum(value.numel() for value in model.state_dict().values()) == 419_275_628


def test_references_are_resolved_without_omegaconf():
    raw = {"a": {"b": 3, "c": "${a.b}", "d": "size ${a.b} px"}, "e": "${a.c}"}
    assert resolve_references(raw) == {"a": {"b": 3, "c": 3, "d": "size 3 px"}, "e": 3}
    with pytest.raises(WeightsError, match=r"the reference \$\{a.x\} names no key"):
        resolve_references({"a": {"b": "${a.x}"}})


def test_a_folder_is_recognised_by_its_files(tmp_path, tiny_dir):
    assert family_of_folder(VECTOR) is TRIPOSR and family_of_folder(tiny_dir).name == "openlrm"
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(
        WeightsError, match=r"not a model folder: it has no config\.json \(OpenLRM v1\.1\) or config\.yaml"
    ):
        family_of_folder(tmp_path)


def test_a_checkpoint_of_tensors_loads_and_one_carrying_code_is_refused(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for name in ("config.yaml", "vit_config.json"):
        shutil.copy(VECTOR / name, folder / name)
    state = load_file(VECTOR / "model.safetensors")
    torch.save(state, folder / "model.ckpt")
    model = load_model(folder)
    reference = load_model(VECTOR)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True)
    )

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unpickled > " + str(tmp_path / "ran"),))

    torch.save({**state, "extra": Payload()}, folder / "model.ckpt")
    with pytest.raises(WeightsError, match=r"model.ckpt: the checkpoint holds more than tensors, so it is not loaded"):
        load_model(folder)
    assert not (tmp_path / "ran").exists()  # nothing in it ran


@pytest.fixture(scope="module")
def real_size_repo(tmp_path_factory) -> Path:
    """A random model of the real size in the Hub's layout: config.yaml and a 1.68 GB model.ckpt,
    its density one compact object at the published threshold."""
    folder = tmp_path_factory.mktemp("triposr-real")
    (folder / "config.yaml").write_text(PUBLISHED_CONFIG)
    return save_model(object_model(TripoSRConfig.load(folder)), folder, checkpoint=True)


@pytest.mark.slow
def test_a_real_size_model_from_a_prefilled_cache_offline(real_size_repo, tmp_path, monkeypatch):
    snapshot = make_hub_cache(tmp_path / "hub", real_size_repo, REPO_ID, ("config.yaml", "model.ckpt"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    family, folder = resolve_model_dir("triposr", cache_dir=tmp_path / "hub")
    assert family is TRIPOSR and folder == snapshot
    model = load_model(folder)
    assert sum(value.numel() for value in model.state_dict().values()) == 419_275_628
    with pytest.raises(Offline, match=r"stabilityai/TripoSR/config.yaml: not in the Hugging Face cache"):
        resolve_model_dir("triposr", cache_dir=tmp_path / "empty")


@pytest.mark.slow
def test_a_real_size_model_over_http_from_a_stand_in_hub(real_size_repo, tmp_path):
    """The command line with --model triposr, downloading through huggingface_hub with its
    progress, then a real-size run at a small grid."""
    with HubServer(real_size_repo) as endpoint:
        env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_ENDPOINT=endpoint)
        for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
            env.pop(name, None)
        out = tmp_path / "real.ply"
        command = [sys.executable, "-m", "openlrm_blender.engine", str(VECTOR / "input.png"), "-o", str(out)]
        command += ["--model", "triposr", "--resolution", "64", "--input-size", "256"]
        done = subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    print(done.stderr[-2000:])
    snapshot = tmp_path / "home" / "hub" / "models--stabilityai--TripoSR" / "snapshots"
    assert (next(snapshot.iterdir()) / "model.ckpt").stat().st_size == (real_size_repo / "model.ckpt").stat().st_size
    assert "model: downloading model.ckpt" in done.stderr and done.returncode == 0, done.stderr
    assert out.stat().st_size > 0 and " vertices, " in done.stdout  # the published settings found the object
