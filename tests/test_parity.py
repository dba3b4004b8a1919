"""Every array of the tiny vector, reproduced from config.json + model.safetensors + input.png,
on the CPU (``PARITY_DEVICE``) whatever the machine has."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openlrm_blender.engine import Options
from openlrm_blender.engine.geometry.density_grid import dense_density_grid, surface_density_grid
from openlrm_blender.engine.geometry.extraction import extract_mesh
from openlrm_blender.engine.input.prepare import prepare_image
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.models.openlrm.camera import source_camera
from openlrm_blender.engine.models.openlrm.config import ModelConfig
from openlrm_blender.engine.models.openlrm.weights import load_model
from openlrm_blender.engine.models.triplane_field import TriplaneField
from openlrm_blender.engine.pipeline import generate
from openlrm_blender.engine.progress import Reporter
from tests.conftest import PARITY_DEVICE, TINY_GRID, TINY_SIZE, reduced
from tests.support.random_models import object_model

ATOL = 1e-4


@pytest.fixture(scope="module")
def model(tiny_dir):
    return load_model(tiny_dir)


@pytest.fixture(scope="module")
def planes(model, expected):
    with torch.no_grad():
        return model(torch.from_numpy(expected["image"]), source_camera(2.0))


def test_image(tiny_dir, expected):
    image = prepare_image(read_rgba(tiny_dir / "input.png"), TINY_SIZE, recenter_object=False)
    np.testing.assert_allclose(image.numpy(), expected["image"], atol=ATOL, rtol=0)


def test_camera(expected):
    np.testing.assert_array_equal(source_camera(2.0).numpy(), expected["camera"])


@torch.no_grad()
def test_encoder_and_camera_embedding(model, expected):
    tokens = model.encoder(torch.from_numpy(expected["image"]))
    np.testing.assert_allclose(tokens.numpy(), expected["encoder_tokens"], atol=ATOL, rtol=0)
    embedding = model.camera_embedder(torch.from_numpy(expected["camera"]))
    np.testing.assert_allclose(embedding.numpy(), expected["camera_embedding"], atol=ATOL, rtol=0)


@torch.no_grad()
def test_transformer_and_planes(model, expected, planes):
    tokens = model.transformer(
        model.pos_embed,
        torch.from_numpy(expected["encoder_tokens"]),
        torch.from_numpy(expected["camera_embedding"]),
    )
    np.testing.assert_allclose(tokens.numpy(), expected["transformer_tokens"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(planes.numpy(), expected["planes"], atol=ATOL, rtol=0)


@torch.no_grad()
def test_points(model, expected, planes):
    sigma, rgb = model.decoder.query(planes, torch.from_numpy(expected["points"]))
    np.testing.assert_allclose(sigma.numpy(), expected["points_sigma"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(rgb.numpy(), expected["points_rgb"], atol=ATOL, rtol=0)


def test_density_grid(model, expected, planes):
    grid = dense_density_grid(TriplaneField(model.decoder, planes), TINY_GRID, Reporter().span("mesh", 0.0, 1.0))
    assert grid.origin == (0, 0, 0) and grid.exact_cells is None and grid.exact.all()
    np.testing.assert_allclose(grid.values, expected["grid_sigma"], atol=ATOL, rtol=0)


def test_surface_grid_is_exact_where_it_evaluates(model, expected, planes):
    grid = surface_density_grid(TriplaneField(model.decoder, planes), TINY_GRID, 3.0, Reporter().span("mesh", 0.0, 1.0))
    box = tuple(slice(o, o + n) for o, n in zip(grid.origin, grid.values.shape, strict=True))
    reference = expected["grid_sigma"][box]
    assert grid.exact_share > 0.0
    np.testing.assert_allclose(grid.values[grid.exact], reference[grid.exact], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(grid.values > 3.0, reference > 3.0)
    outside_box = np.ones(expected["grid_sigma"].shape, dtype=bool)
    outside_box[box] = False
    assert (expected["grid_sigma"][outside_box] <= 3.0).all()


@pytest.mark.parametrize("dense", [False, True], ids=["fast", "dense"])
def test_mesh(model, expected, planes, dense):
    mesh = extract_mesh(TriplaneField(model.decoder, planes), TINY_GRID, 3.0, dense=dense)
    np.testing.assert_array_equal(mesh.faces, expected["mesh_faces"])
    np.testing.assert_allclose(mesh.vertices, expected["mesh_vertices"], atol=ATOL, rtol=0)
    difference = np.abs(mesh.colours_u8.astype(int) - expected["mesh_vertex_colors"].astype(int))
    assert difference.max() <= 1


def test_pipeline_end_to_end(tiny_dir, expected):
    """The one-call API from the PNG file gives the reference mesh."""
    options = Options(
        weights_dir=tiny_dir, input_size=TINY_SIZE, resolution=TINY_GRID, recenter=False, device=PARITY_DEVICE
    )
    result = generate(tiny_dir / "input.png", options)
    assert result.mesh.vertices.dtype == np.float32 and result.mesh.faces.dtype == np.int32
    assert result.mesh.colours_u8.dtype == np.uint8 and result.mesh.colours.dtype == np.float32
    np.testing.assert_array_equal(result.mesh.faces, expected["mesh_faces"])
    np.testing.assert_allclose(result.mesh.vertices, expected["mesh_vertices"], atol=ATOL, rtol=0)
    assert np.abs(result.mesh.colours_u8.astype(int) - expected["mesh_vertex_colors"]).max() <= 1


# --- fast extraction: the same mesh as the dense published recipe ---------------------------


def assert_same_mesh(fast, dense):
    np.testing.assert_array_equal(fast.faces, dense.faces)
    np.testing.assert_allclose(fast.vertices, dense.vertices, atol=ATOL, rtol=0)
    assert np.abs(fast.colours_u8.astype(int) - dense.colours_u8.astype(int)).max() <= 1


@pytest.mark.parametrize("resolution", [64, 128])
def test_fast_extraction_equals_dense_on_the_tiny_model(model, planes, resolution):
    fast = extract_mesh(TriplaneField(model.decoder, planes), resolution, 3.0, dense=False)
    dense = extract_mesh(TriplaneField(model.decoder, planes), resolution, 3.0, dense=True)
    assert_same_mesh(fast, dense)


def real_layout_planes(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)), source_camera(2.0))


def test_fast_extraction_equals_dense_on_a_real_layout_model(small_model_dir):
    """Untrained weights: noise through the whole volume, so every cell is evaluated."""
    model = load_model(small_model_dir)
    planes = real_layout_planes(model)
    grid = surface_density_grid(TriplaneField(model.decoder, planes), 160, 3.0, Reporter().span("mesh", 0.0, 1.0))
    assert grid.exact_share > 0.9
    fast = extract_mesh(TriplaneField(model.decoder, planes), 160, 3.0, dense=False)
    dense = extract_mesh(TriplaneField(model.decoder, planes), 160, 3.0, dense=True)
    assert len(fast.faces) > 1000
    assert_same_mesh(fast, dense)


@pytest.mark.parametrize("resolution", [150, 160])
def test_fast_extraction_equals_dense_on_a_real_layout_object(resolution):
    """Real-layout weights shaped into one object: only a thin band round it is evaluated."""
    model = object_model(ModelConfig.from_dict(reduced("small")), seed=3)
    planes = real_layout_planes(model)
    grid = surface_density_grid(
        TriplaneField(model.decoder, planes), resolution, 3.0, Reporter().span("mesh", 0.0, 1.0)
    )
    assert grid.exact_share < 0.2 and min(grid.origin) > 0
    assert grid.exact_share == pytest.approx(grid.exact.sum() / resolution**3)
    fast = extract_mesh(TriplaneField(model.decoder, planes), resolution, 3.0, dense=False)
    dense = extract_mesh(TriplaneField(model.decoder, planes), resolution, 3.0, dense=True)
    assert len(fast.faces) > 10000
    assert_same_mesh(fast, dense)


@pytest.mark.parametrize("resolution", [96, 101])
def test_surface_grid_classifies_every_point_like_the_dense_grid(model, planes, resolution):
    """Every point of the box is on its dense side; every point outside it is outside."""
    step = Reporter().span("mesh", 0.0, 1.0)
    dense = dense_density_grid(TriplaneField(model.decoder, planes), resolution, step).values
    surface = surface_density_grid(TriplaneField(model.decoder, planes), resolution, 3.0, step)
    box = tuple(slice(o, o + n) for o, n in zip(surface.origin, surface.values.shape, strict=True))
    assert surface.exact_share == pytest.approx(surface.exact.sum() / resolution**3)
    np.testing.assert_array_equal(surface.values > 3.0, dense[box] > 3.0)
    dense[box] = 0.0
    assert (dense <= 3.0).all()
