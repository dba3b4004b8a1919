"""TRELLIS against the published code: every array of the tiny vector (the noise from the seed,
each model call of both stages from its own inputs, the structure's logits and voxels, the
latent, the Gaussians, the radiance field's raw outputs, the mesh), the colour rule against a
brute-force reckoning, the whole run through the command line, and the real configuration's
every tensor."""

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

from openlrm_blender.engine.models.trellis.config import RADIANCE, TrellisConfig, radiance_decoder_config
from openlrm_blender.engine.models.trellis.decoders import RadianceDecoder
from openlrm_blender.engine.models.trellis.gaussians import NO_WEIGHT, REACH, SH0
from openlrm_blender.engine.models.trellis.model import Trellis, latent_noise, seeded_noise
from openlrm_blender.engine.models.trellis.sparse import Level
from openlrm_blender.engine.models.trellis.weights import load_model
from tests.conftest import REPO, SHARED, SPEC
from tests.support.hub import HubServer
from tests.support.random_trellis import REAL_ENCODER, write_configs

VECTOR = SHARED / "vectors" / "trellis-tiny"
SEED = 1234
# Float32 on the CPU in another summation order than spconv's and flash-attn's stand-in.
CALL_TOLERANCE = 1e-5


def load(name: str) -> dict[str, np.ndarray]:
    if not (VECTOR / name).is_file():
        pytest.fail(f"the shared tiny TRELLIS vector is missing: {VECTOR} (set OPENLRM_SHARED)")
    with np.load(VECTOR / name) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return load("expected.npz")


@pytest.fixture(scope="module")
def tiny() -> Trellis:
    return load_model(VECTOR)


def replay_calls(call, noise: torch.Tensor, times: np.ndarray, conditional: np.ndarray, outputs: np.ndarray,
                 sampler, guidance: float) -> torch.Tensor:  # fmt: skip
    """Each published model call made again from the input the published run gave it (its
    Euler steps re-taken from the stored outputs), compared; the stage's last sample."""
    x, index = noise, 0
    grid = sampler.times(sampler.steps)
    for step in range(sampler.steps):
        t, t_previous = grid[step], grid[step + 1]
        stored = []
        while index < len(times) and abs(times[index] - 1000 * t) < 1e-3:
            ours = call(x, torch.tensor([float(times[index])]), bool(conditional[index]))
            np.testing.assert_allclose(ours.numpy(), outputs[index], atol=CALL_TOLERANCE, rtol=0)
            stored.append(torch.from_numpy(outputs[index]))
            index += 1
        velocity = (1 + guidance) * stored[0] - guidance * stored[1] if len(stored) == 2 else stored[0]
        x = x - (t - t_previous) * velocity
    assert index == len(times)
    return x


def test_the_pipeline_file_is_read_not_assumed():
    config = TrellisConfig.load(VECTOR)
    assert (config.structure_sampler.steps, config.latent_sampler.steps) == (3, 3)
    assert (config.structure_sampler.cfg_strength, config.latent_sampler.cfg_strength) == (7.5, 3.0)
    assert config.structure_sampler.cfg_interval == (0.5, 1.0) and config.latent_sampler.rescale_t == 3.0
    assert config.structure_flow.resolution == 8 and config.latent_flow.io_block_channels == [16]


def test_the_seed_draws_the_published_noise(tiny, expected):
    generator, noise = seeded_noise(SEED, tiny.config)
    np.testing.assert_array_equal(noise.numpy(), expected["ss_noise"])
    second = latent_noise(generator, len(expected["coords"]), tiny.config)
    np.testing.assert_array_equal(second.numpy(), expected["slat_noise"])


@torch.inference_mode()
def test_stage_one_every_call_the_logits_and_the_voxels(tiny, expected):
    cond = torch.from_numpy(expected["cond"])
    negative = torch.zeros_like(cond)
    sampler = tiny.config.structure_sampler
    latent = replay_calls(
        lambda x, t, conditional: tiny.structure_flow(x, t, cond if conditional else negative),
        torch.from_numpy(expected["ss_noise"]), expected["ss_t"], expected["ss_conditional"],
        expected["ss_outputs"], sampler, sampler.cfg_strength,
    )  # fmt: skip
    np.testing.assert_allclose(latent.numpy(), expected["ss_latent"], atol=CALL_TOLERANCE, rtol=0)
    logits = tiny.structure_decoder(torch.from_numpy(expected["ss_latent"]))
    np.testing.assert_allclose(logits.numpy(), expected["ss_logits"], atol=CALL_TOLERANCE, rtol=0)
    voxels = torch.argwhere(torch.from_numpy(expected["ss_logits"])[0, 0] > 0)
    np.testing.assert_array_equal(voxels.numpy(), expected["coords"][:, 1:])


@torch.inference_mode()
def test_stage_two_every_call_and_the_latent(tiny, expected):
    cond = torch.from_numpy(expected["cond"])
    negative = torch.zeros_like(cond)
    voxels = Level(torch.from_numpy(expected["coords"][:, 1:]).long())
    sampler = tiny.config.latent_sampler
    latent = replay_calls(
        lambda x, t, conditional: tiny.latent_flow(x, t, cond if conditional else negative, voxels),
        torch.from_numpy(expected["slat_noise"]), expected["slat_t"], expected["slat_conditional"],
        expected["slat_outputs"], sampler, sampler.cfg_strength,
    )  # fmt: skip
    std, mean = torch.tensor(tiny.config.latent_std), torch.tensor(tiny.config.latent_mean)
    np.testing.assert_allclose((latent * std + mean).numpy(), expected["slat"], atol=CALL_TOLERANCE, rtol=0)


@torch.inference_mode()
def test_the_gaussians(tiny, expected):
    gaussians = tiny.gaussians(torch.from_numpy(expected["slat"]), torch.from_numpy(expected["coords"][:, 1:]))
    for name in ("xyz", "features_dc", "scaling", "rotation", "opacity"):
        np.testing.assert_allclose(getattr(gaussians, name).numpy(), expected[f"gs_{name}"], atol=1e-5, rtol=0)


@torch.inference_mode()
def test_the_radiance_field_decoder_gives_the_published_outputs(expected):
    """Never run for a mesh, but its checkpoint is part of the published model: its raw output
    laid out as the published representation (vectors, densities, colours; the vectors + 1)."""
    from safetensors.torch import load_file

    config = radiance_decoder_config(VECTOR)
    decoder = RadianceDecoder(config)
    stem = json.loads((VECTOR / "pipeline.json").read_text())["args"]["models"][RADIANCE[0]]
    decoder.load_state_dict(load_file(VECTOR / f"{stem}.safetensors"))
    raw = decoder(torch.from_numpy(expected["slat"]), torch.from_numpy(expected["coords"][:, 1:]))
    rank, dim = 16, 8
    trivec, density, colour = torch.split(raw, [rank * 3 * dim, rank, rank * 3], dim=1)
    np.testing.assert_allclose((trivec.reshape(-1, rank, 3, dim) + 1).numpy(), expected["rf_trivec"], atol=1e-5)
    np.testing.assert_allclose(density.numpy(), expected["rf_density"], atol=1e-5)
    np.testing.assert_allclose(colour.reshape(-1, rank, 1, 3).numpy(), expected["rf_features_dc"], atol=1e-5)


@torch.inference_mode()
def test_the_mesh(tiny, expected):
    """FlexiCubes on the mesh decoder's cube grid: every vertex within 1e-5; the triangles the
    same and in order but where a quad's two diagonals tie within float32's rounding (the
    published run's convolutions sum in another order: 2 quads of 104,714 here)."""
    from openlrm_blender.engine.geometry.flexicubes import extract

    grid = tiny.cube_grid(torch.from_numpy(expected["slat"]), torch.from_numpy(expected["coords"][:, 1:]))
    vertices, faces, attributes = extract(grid)
    np.testing.assert_allclose(vertices.numpy(), expected["mesh_vertices"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(attributes.numpy(), expected["mesh_vertex_attrs"], atol=1e-4, rtol=0)
    same = (faces.numpy() == expected["mesh_faces"]).all(axis=1)
    assert same.mean() > 0.9999, f"{(~same).sum()} of {len(same)} triangles differ"


def brute_force_colours(points: np.ndarray, gaussians, resolution: int) -> np.ndarray:
    """The colour rule written out for every point against every Gaussian."""
    xyz = gaussians.xyz.double().numpy()
    colour = (0.5 + SH0 * gaussians.features_dc[:, 0]).double().numpy()
    w, x, y, z = gaussians.rotation.double().numpy().T
    rotation = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=1).reshape(-1, 3, 3)  # fmt: skip
    scale = gaussians.scaling.double().numpy()
    covariance = rotation @ (scale[:, :, None] ** 2 * rotation.transpose(0, 2, 1))
    inverse = np.linalg.inv(covariance)
    opacity = gaussians.opacity[:, 0].double().numpy()
    out = np.empty((len(points), 3))
    for row, point in enumerate(points.astype(np.float64)):
        d = point - xyz
        near = np.nonzero((np.abs(d) <= REACH / resolution).all(axis=1))[0]
        weight = opacity[near] * np.exp(-0.5 * np.einsum("gi,gij,gj->g", d[near], inverse[near], d[near]))
        if weight.sum() < NO_WEIGHT:
            out[row] = colour[np.argmin((d**2).sum(axis=1))]
        else:
            out[row] = (weight[:, None] * colour[near]).sum(axis=0) / weight.sum()
    return np.clip(out, 0.0, 1.0)


@torch.inference_mode()
def test_the_colour_rule_against_a_brute_force_reckoning(tiny, expected):
    """On mesh vertices, on points between Gaussians and on points far from any (the nearest's)."""
    gaussians = tiny.gaussians(torch.from_numpy(expected["slat"]), torch.from_numpy(expected["coords"][:, 1:]))
    generator = np.random.default_rng(0)
    points = np.concatenate([
        expected["mesh_vertices"][generator.choice(len(expected["mesh_vertices"]), 300, replace=False)],
        generator.uniform(-0.5, 0.5, (200, 3)),
        generator.uniform(-2.0, 2.0, (20, 3)),
    ]).astype(np.float32)  # fmt: skip
    ours = gaussians.colours(points, lambda fraction, message: None)
    np.testing.assert_allclose(ours, brute_force_colours(points, gaussians, 32), atol=1e-5)


def test_the_real_configuration_builds_every_tensor_of_the_published_list(tmp_path):
    """Every tensor of the six checkpoints at its shape (spec/keys-trellis.tsv), and with the
    image encoder (its 304,372,736 values: test_trellis_image) 1,799,879,158 values in all."""
    from openlrm_blender.engine.models.dinov2 import Dinov2Config
    from openlrm_blender.engine.models.trellis.model import NETWORKS

    config = write_configs(tmp_path)
    published: dict[str, tuple[int, ...]] = {}
    for line in (SPEC / "keys-trellis.tsv").read_text().splitlines()[1:]:
        component, key, shape, _ = line.split("\t")
        published[f"{component}/{key}"] = tuple(int(size) for size in shape.split("x"))
    with torch.device("meta"):
        model = Trellis(config, Dinov2Config.from_json(REAL_ENCODER, tmp_path))
        radiance = RadianceDecoder(radiance_decoder_config(tmp_path))
    ours = {
        f"{config.checkpoints[role]}/{key}": tuple(value.shape)
        for role, name in NETWORKS.items()
        for key, value in getattr(model, name).state_dict().items()
    }
    stem = json.loads((tmp_path / "pipeline.json").read_text())["args"]["models"][RADIANCE[0]]
    ours |= {f"{stem}/{key}": tuple(value.shape) for key, value in radiance.state_dict().items()}
    theirs = {key: shape for key, shape in published.items() if key.startswith("ckpts/")}
    assert ours == theirs
    encoder_values = sum(value.numel() for value in model.image_encoder.state_dict().values())
    assert sum(np.prod(shape) for shape in ours.values()) + encoder_values == 1_799_879_158


@torch.inference_mode()
def test_several_photos_of_one_object_in_stochastic_mode(tiny):
    """The published multi-image run: step i of each stage conditioned on photo i mod 3; the
    unconditional input one photo's zeros."""
    multi = load("multi.npz")
    cond = torch.from_numpy(multi["cond"])
    negative = torch.zeros_like(cond[:1])
    step_of = {float(t): step for step, t in enumerate(np.unique(multi["ss_t"])[::-1])}
    conditional = np.array([True, False] * (len(multi["ss_t"]) // 2))

    def photo(t: torch.Tensor) -> torch.Tensor:
        index = step_of[float(t[0])] % len(cond)
        return cond[index : index + 1]

    sampler = tiny.config.structure_sampler
    generator, noise = seeded_noise(SEED, tiny.config)
    replay_calls(
        lambda x, t, conditioned: tiny.structure_flow(x, t, photo(t) if conditioned else negative),
        noise, multi["ss_t"], conditional, multi["ss_outputs"], sampler, sampler.cfg_strength,
    )  # fmt: skip
    voxels = torch.argwhere(torch.from_numpy(multi["ss_logits"])[0, 0] > 0)
    level, sampler = Level(voxels), tiny.config.latent_sampler
    replay_calls(
        lambda x, t, conditioned: tiny.latent_flow(x, t, photo(t) if conditioned else negative, level),
        latent_noise(generator, len(voxels), tiny.config), multi["slat_t"], conditional, multi["slat_outputs"],
        sampler, sampler.cfg_strength,
    )  # fmt: skip


@torch.inference_mode()
def test_a_mesh_it_did_not_make_is_painted_on_its_own_voxels(tiny):
    from openlrm_blender.engine.input.mesh_file import read_mesh
    from openlrm_blender.engine.input.voxelise import voxelise

    painted = load("paint.npz")
    mesh = read_mesh(VECTOR / "paint.ply")
    coords = torch.from_numpy(voxelise(mesh.vertices, mesh.faces, tiny.config.latent_flow.resolution).coords).long()
    np.testing.assert_array_equal(coords.numpy(), painted["coords"][:, 1:])
    noise = latent_noise(torch.Generator().manual_seed(SEED), len(coords), tiny.config)
    np.testing.assert_array_equal(noise.numpy(), painted["slat_noise"])
    cond = torch.from_numpy(painted["cond"])
    level, sampler = Level(coords), tiny.config.latent_sampler
    latent = replay_calls(
        lambda x, t, conditional: tiny.latent_flow(x, t, cond if conditional else torch.zeros_like(cond), level),
        noise, painted["slat_t"], painted["slat_conditional"], painted["slat_outputs"], sampler, sampler.cfg_strength,
    )  # fmt: skip
    std, mean = torch.tensor(tiny.config.latent_std), torch.tensor(tiny.config.latent_mean)
    np.testing.assert_allclose((latent * std + mean).numpy(), painted["slat"], atol=CALL_TOLERANCE, rtol=0)
    gaussians = tiny.gaussians(torch.from_numpy(painted["slat"]), coords)
    np.testing.assert_allclose(gaussians.xyz.numpy(), painted["gs_xyz"], atol=1e-5, rtol=0)


def read_ply(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from plyfile import PlyData

    data = PlyData.read(str(path))
    vertex = data["vertex"]
    vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    colours = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
    return vertices, np.stack(data["face"]["vertex_indices"]), colours


def assert_coloured_by_their_gaussians(vertices: np.ndarray, colours: np.ndarray, gaussians, samples: int = 400):
    """Each sampled vertex's 8-bit colour within 1/255 of its Gaussians' (the checks' rule,
    reckoned by brute force), for 99% of them."""
    chosen = np.random.default_rng(1).choice(len(vertices), min(samples, len(vertices)), replace=False)
    reference = brute_force_colours(vertices[chosen].astype(np.float32), gaussians, gaussians.resolution)
    off = np.abs(colours[chosen] / 255.0 - reference).max(axis=1)
    assert (off <= 1 / 255 + 1e-6).mean() >= 0.99, np.sort(off)[-10:]


def run_cli(tmp_path, *arguments: str) -> Path:
    from openlrm_blender.engine.cli import main

    output = tmp_path / "out.ply"
    common = ["--weights", str(VECTOR), "--seed", str(SEED), "--no-photo-texture", "--device", "cpu", "-q"]
    assert main([str(VECTOR / "input.png"), "-o", str(output), *common, *arguments]) == 0
    return output


def test_the_command_line_makes_the_published_mesh_coloured_by_its_gaussians(tmp_path, tiny, expected):
    vertices, faces, colours = read_ply(run_cli(tmp_path))
    np.testing.assert_allclose(vertices, expected["mesh_vertices"], atol=1e-4, rtol=0)
    assert (faces == expected["mesh_faces"]).all(axis=1).mean() > 0.9999
    gaussians = tiny.gaussians(torch.from_numpy(expected["slat"]), torch.from_numpy(expected["coords"][:, 1:]))
    assert_coloured_by_their_gaussians(vertices, colours, gaussians)


def test_the_command_line_paints_a_mesh_keeping_it_as_it_was(tmp_path, tiny):
    from plyfile import PlyData

    painted = load("paint.npz")
    vertices, faces, colours = read_ply(run_cli(tmp_path, "--paint", str(VECTOR / "paint.ply")))
    given = PlyData.read(str(VECTOR / "paint.ply"))
    np.testing.assert_array_equal(vertices, np.stack([given["vertex"][axis] for axis in "xyz"], axis=1))
    np.testing.assert_array_equal(faces, np.stack(given["face"]["vertex_indices"]))
    from openlrm_blender.engine.input.voxelise import voxelise

    grid = voxelise(vertices, faces, tiny.config.latent_flow.resolution)
    gaussians = tiny.gaussians(torch.from_numpy(painted["slat"]), torch.from_numpy(painted["coords"][:, 1:]))
    assert_coloured_by_their_gaussians(grid.to_cube(vertices), colours, gaussians)


def test_the_command_line_takes_several_photos_of_one_object(tmp_path, tiny):
    multi = load("multi.npz")
    views = ["--view", str(VECTOR / "view1.png"), "--view", str(VECTOR / "view2.png")]
    vertices, faces, _ = read_ply(run_cli(tmp_path, *views))
    np.testing.assert_allclose(vertices, multi["mesh_vertices"], atol=1e-4, rtol=0)
    assert (faces == multi["mesh_faces"]).all(axis=1).mean() > 0.9999


@pytest.fixture(scope="module")
def hub_repositories(tmp_path_factory) -> dict[str, Path]:
    """The tiny model as the Hub holds it: TRELLIS's repository and the encoder's own."""
    root = tmp_path_factory.mktemp("hub-repositories")
    trellis, encoder = root / "trellis", root / "encoder"
    shutil.copytree(VECTOR, trellis, ignore=shutil.ignore_patterns("dinov2", "*.npz", "*.png", "*.ply"))
    shutil.copytree(VECTOR / "dinov2", encoder)
    return {"microsoft/TRELLIS-image-large": trellis, "facebook/dinov2-with-registers-large": encoder}


def test_from_the_hub_both_repositories_sized_together_with_progress(hub_repositories, tmp_path):
    """`--model trellis` over HTTP from a stand-in hub: pipeline.json first, then the
    checkpoints and the encoder's files in one download told in GB; the mesh is the folder's."""
    with HubServer(tmp_path, hub_repositories) as endpoint:
        env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_ENDPOINT=endpoint)
        for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
            env.pop(name, None)
        output = tmp_path / "out.ply"
        command = [sys.executable, "-m", "openlrm_blender.engine", str(VECTOR / "input.png"), "-o", str(output),
                   "--model", "trellis", "--seed", str(SEED), "--no-photo-texture", "--device", "cpu"]  # fmt: skip
        done = subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model: downloading" in done.stderr and " GB of " in done.stderr
    cache = tmp_path / "home" / "hub"
    assert (cache / "models--facebook--dinov2-with-registers-large").is_dir()
    assert not list(cache.rglob("slat_dec_rf_*"))  # the radiance field's decoder is never fetched
    vertices, _, _ = read_ply(output)
    assert vertices.shape == load("expected.npz")["mesh_vertices"].shape


def test_a_folder_without_its_encoder_or_a_checkpoint_is_named(tmp_path):
    from openlrm_blender.engine.errors import WeightsError
    from openlrm_blender.engine.models.trellis.weights import check_model_dir

    folder = tmp_path / "trellis"
    shutil.copytree(VECTOR, folder, ignore=shutil.ignore_patterns("*.npz", "*.png", "*.ply"))
    shutil.rmtree(folder / "dinov2")
    with pytest.raises(
        WeightsError, match=r"needs dinov2/config\.json, dinov2/model\.safetensors \(its image encoder: facebook"
    ):
        check_model_dir(folder)
    shutil.copytree(VECTOR / "dinov2", folder / "dinov2")
    next((folder / "ckpts").glob("ss_flow*.safetensors")).unlink()
    with pytest.raises(WeightsError, match=r"a TRELLIS folder needs ckpts/ss_flow_img_dit_T_8l8_fp32\.safetensors"):
        check_model_dir(folder)


def test_triposgs_shapes_take_their_colours_from_trellis(tmp_path, tiny):
    """--colours trellis: TripoSG's mesh (its vertices as without), every vertex coloured by the
    Gaussians TRELLIS's second stage makes on that mesh's voxels (in our frame)."""
    from openlrm_blender.engine.cli import main
    from openlrm_blender.engine.input.voxelise import voxelise
    from openlrm_blender.engine.pipeline import PaintMesh, paint

    shape = SHARED / "vectors" / "triposg-tiny"
    common = [str(shape / "input.png"), "--weights", str(shape), "--steps", "2", "--resolution", "32", "--seed",
              str(SEED), "--no-photo-texture", "--device", "cpu", "-q"]  # fmt: skip
    assert main([*common, "-o", str(tmp_path / "photo.ply")]) == 0
    assert main([*common, "-o", str(tmp_path / "trellis.ply"), "--colours", "trellis", "--painter-weights",
                 str(VECTOR)]) == 0  # fmt: skip
    photo_vertices, photo_faces, photo_colours = read_ply(tmp_path / "photo.ply")
    vertices, faces, colours = read_ply(tmp_path / "trellis.ply")
    np.testing.assert_array_equal(vertices, photo_vertices)
    np.testing.assert_array_equal(faces, photo_faces)
    assert np.abs(colours.astype(int) - photo_colours).max() > 10  # not the photo's
    # The same as painting that mesh with TRELLIS from TripoSG's photo.
    from openlrm_blender.engine import Options

    options = Options(weights_dir=VECTOR, seed=SEED, photo_texture=False, device="cpu", remove_background=False)
    painted = paint(shape / "input.png", PaintMesh(vertices, faces), options).mesh
    assert np.abs(painted.colours_u8.astype(int) - colours).max() <= 1
    assert len(voxelise(vertices, faces, tiny.config.latent_flow.resolution).coords) > 0


def test_a_photo_that_cannot_be_read_is_named_and_nothing_is_written(tmp_path):
    from openlrm_blender.engine.cli import main

    broken = tmp_path / "side.png"
    broken.write_bytes(b"not a png")
    output = tmp_path / "out.ply"
    assert (
        main([str(VECTOR / "input.png"), "-o", str(output), "--weights", str(VECTOR), "--view", str(broken), "-q"]) == 1
    )
    assert not output.exists()


def test_several_photos_need_a_family_that_takes_them(tmp_path, capsys):
    from openlrm_blender.engine.cli import main

    shape = SHARED / "vectors" / "triposg-tiny"
    output = tmp_path / "out.ply"
    arguments = [
        str(shape / "input.png"),
        "-o",
        str(output),
        "--weights",
        str(shape),
        "--view",
        str(VECTOR / "view1.png"),
    ]
    assert main([*arguments, "-q"]) == 1
    assert "TripoSG takes one photo: several photos of one object need TRELLIS" in capsys.readouterr().err
    assert not output.exists()


def test_half_precision_keeps_the_published_torsos_in_half_and_the_rest_in_float32():
    """What a GPU's "auto" precision loads (float16, as published): only the torsos' linear
    layers and convolutions in half precision; norms, embeddings, input and output layers, and
    the image encoder in float32. (Loaded on the CPU: nothing runs.)"""
    model = load_model(VECTOR, "cpu", torch.float16)
    flow = model.latent_flow
    assert flow.blocks[0].self_attn.to_qkv.weight.dtype == torch.float16
    assert flow.input_blocks[0].conv1.conv.weight.dtype == torch.float16
    assert flow.blocks[0].norm2.weight.dtype == torch.float32  # the cross-attention's affine norm
    assert flow.blocks[0].self_attn.q_rms_norm.gamma.dtype == torch.float32
    assert flow.input_layer.weight.dtype == flow.out_layer.weight.dtype == torch.float32
    assert model.structure_decoder.middle_block[0].conv1.weight.dtype == torch.float16
    assert model.structure_decoder.input_layer.weight.dtype == torch.float32
    assert model.mesh_decoder.upsample[0].out_layers[0].conv.weight.dtype == torch.float16
    assert model.mesh_decoder.upsample[0].act_layers[0].weight.dtype == torch.float32
    assert all(parameter.dtype == torch.float32 for parameter in model.image_encoder.parameters())


def test_with_one_photo_both_view_modes_are_the_ordinary_run(tmp_path):
    """multidiffusion averages the photos' velocities: of one photo, that is its own."""
    stochastic = read_ply(run_cli(tmp_path))
    multidiffusion = read_ply(run_cli(tmp_path, "--view-mode", "multidiffusion"))
    for ours, theirs in zip(stochastic, multidiffusion, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_a_textured_glb_carries_the_gaussians_colours_baked(tmp_path):
    """GLB output is textured: the mesh simplified to its face budget, UVs in the unit square,
    a texture baked from the Gaussians (not a flat colour)."""
    from openlrm_blender.engine.cli import main
    from tests.support.glb import textured_mesh

    output = tmp_path / "out.glb"
    arguments = ["--weights", str(VECTOR), "--seed", str(SEED), "--faces", "5000", "--texture-size", "256",
                 "--no-photo-texture", "--device", "cpu", "-q"]  # fmt: skip
    assert main([str(VECTOR / "input.png"), "-o", str(output), *arguments]) == 0
    mesh = textured_mesh(output)
    assert len(mesh["faces"]) <= 5000 * 1.05
    assert mesh["uvs"].min() >= 0.0 and mesh["uvs"].max() <= 1.0
    assert mesh["texture"].shape == (256, 256, 3) and mesh["texture"].reshape(-1, 3).std(axis=0).min() > 0.02


def test_a_glb_is_painted_and_written_back_with_its_vertices(tmp_path):
    """A mesh read from a GLB (turned from glTF's +Y up into ours) painted, written as GLB: its
    positions and triangles come back as they were, with vertex colours."""
    from openlrm_blender.engine.export.mesh_files import write_mesh
    from openlrm_blender.engine.input.mesh_file import read_mesh
    from openlrm_blender.engine.result import Mesh

    source = read_mesh(VECTOR / "paint.ply")
    given = tmp_path / "given.glb"
    write_mesh(Mesh(source.vertices.astype(np.float32), source.faces, np.full(source.vertices.shape, 0.5)), given)
    output = tmp_path / "painted.glb"
    arguments = ["--weights", str(VECTOR), "--seed", str(SEED), "--paint", str(given), "--device", "cpu", "-q"]
    from openlrm_blender.engine.cli import main

    assert main([str(VECTOR / "input.png"), "-o", str(output), *arguments]) == 0
    before, after = read_mesh(given), read_mesh(output)
    np.testing.assert_allclose(after.vertices, before.vertices, atol=1e-7, rtol=0)
    np.testing.assert_array_equal(after.faces, before.faces)


def test_every_second_of_a_run_is_in_one_stage():
    """The run's stages add up to its total: the decoders' seconds and the mesh made of them
    both count in "mesh" (TRELLIS reports its decoding as that stage), the camera's fit in its own."""
    from openlrm_blender.engine import Options
    from openlrm_blender.engine.pipeline import generate

    options = Options(weights_dir=VECTOR, seed=SEED, device="cpu", remove_background=False)
    timings = generate(VECTOR / "input.png", options).timings
    stages = ("load", "preprocess", "encode", "sample", "mesh", "camera", "photo", "surface")
    assert sum(timings.get(stage, 0.0) for stage in stages) == pytest.approx(timings["total"], rel=1e-3)
    assert timings["mesh"] > timings["flexicubes"] + timings["colours"] and "camera" in timings
