"""TripoSG against the published code: every array of the tiny vector (the image preparation,
the image tokens, the noise, each flow step, the decoder's logits, the dense grid and the
meshes), the real weights' key layout from the published configuration, a real-size model
from the Hub's cache offline and over HTTP, and every bad input in words."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from openlrm_blender.engine import Options
from openlrm_blender.engine.cli import main
from openlrm_blender.engine.errors import Offline
from openlrm_blender.engine.geometry.density_grid import dense_density_grid
from openlrm_blender.engine.geometry.extraction import extract_mesh
from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.models.registry import TRIPOSG, family_of_folder, family_of_name, resolve_model_dir
from openlrm_blender.engine.models.triposg.config import TripoSGConfig
from openlrm_blender.engine.models.triposg.field import LogitField, grid_axis
from openlrm_blender.engine.models.triposg.image import cut_out, pixel_values, prepared_image
from openlrm_blender.engine.models.triposg.model import TripoSG, to_output_frame
from openlrm_blender.engine.models.triposg.sampler import initial_noise, sample
from openlrm_blender.engine.models.triposg.scheduler import euler_step, flow_schedule
from openlrm_blender.engine.models.triposg.vae import unused_layout
from openlrm_blender.engine.models.triposg.weights import REPO_ID, load_model
from openlrm_blender.engine.pipeline import generate
from openlrm_blender.engine.progress import Reporter
from tests.conftest import PARITY_DEVICE, REPO, SHARED, SPEC
from tests.support.hub import HubServer, make_hub_cache
from tests.support.random_triposg import object_model, save_model, write_configs

VECTOR = SHARED / "vectors" / "triposg-tiny"
META = json.loads((VECTOR / "meta.json").read_text()) if (VECTOR / "meta.json").is_file() else {}
STEP = Reporter().span("mesh", 0.0, 1.0)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    if not (VECTOR / "expected.npz").is_file():
        pytest.fail(f"the shared tiny TripoSG vector is missing: {VECTOR} (set OPENLRM_SHARED)")
    with np.load(VECTOR / "expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def tiny() -> TripoSG:
    return load_model(VECTOR)


def test_the_image_preparation(expected):
    """The published crop with its 10% white margin, to 8 bits, then the feature extractor."""
    cut = cut_out(read_rgba(VECTOR / "input.png"))
    prepared = prepared_image(cut)
    np.testing.assert_array_equal(prepared, expected["prepared_image"])
    pixels = pixel_values(prepared, TripoSGConfig.load(VECTOR).preprocessor)
    np.testing.assert_allclose(pixels[0].numpy(), expected["pixel_values"], atol=1e-6, rtol=0)


@torch.no_grad()
def test_the_image_tokens(tiny, expected):
    tokens = tiny.image_tokens(torch.from_numpy(expected["pixel_values"])[None])
    np.testing.assert_allclose(tokens[0].numpy(), expected["image_embeds"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(expected["image_embeds_uncond"], 0)  # the unconditional tokens are zeros


def test_the_noise_and_the_schedule(tiny, expected):
    noise = initial_noise(META["seed"], META["num_tokens"], 64)
    np.testing.assert_array_equal(noise[0].numpy(), expected["noise"])
    sigmas, times = flow_schedule(META["steps"], tiny.config.scheduler)
    np.testing.assert_array_equal(sigmas.numpy(), expected["sigmas"])
    np.testing.assert_array_equal(times.numpy(), expected["timesteps"])
    np.testing.assert_array_equal(times.numpy(), expected["dit_timestep"])


@torch.no_grad()
def test_each_flow_step(tiny, expected):
    """Each step's transformer outputs [unconditional, conditional] from the stored inputs, and
    the Euler step from the stored outputs."""
    tokens = torch.from_numpy(expected["image_embeds"])[None]
    sigmas, times = flow_schedule(META["steps"], tiny.config.scheduler)
    for index in range(META["steps"]):
        latents = torch.from_numpy(expected["noise"] if index == 0 else expected["step_latents"][index - 1])[None]
        out = tiny.transformer(
            torch.cat([latents, latents]), times[index].expand(2), torch.cat([torch.zeros_like(tokens), tokens])
        )
        np.testing.assert_allclose(out.numpy(), expected["dit_out"][index], atol=1e-5, rtol=0)
        unconditional, conditional = (torch.from_numpy(expected["dit_out"][index][k])[None] for k in (0, 1))
        velocity = unconditional + META["guidance_scale"] * (conditional - unconditional)
        stepped = euler_step(latents, velocity, sigmas[index], sigmas[index + 1])
        np.testing.assert_array_equal(stepped[0].numpy(), expected["step_latents"][index])


@torch.no_grad()
def test_the_chained_sampling(tiny, expected):
    tokens = torch.from_numpy(expected["image_embeds"])[None]
    noise = initial_noise(META["seed"], META["num_tokens"], 64)
    latents = sample(tiny.transformer, tokens, noise, META["steps"], META["guidance_scale"], tiny.config.scheduler)
    np.testing.assert_allclose(latents[0].numpy(), expected["latents"], atol=1e-4, rtol=0)


@torch.no_grad()
def test_the_decoders_logits(tiny, expected):
    keys, values = tiny.vae.latent_tokens(torch.from_numpy(expected["latents"])[None])
    logits = tiny.vae.logits(torch.from_numpy(expected["query_points"])[None], keys, values)
    np.testing.assert_allclose(logits[0].numpy(), expected["query_logits"], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def field(tiny, expected) -> LogitField:
    return LogitField(tiny.vae, torch.from_numpy(expected["latents"])[None])


def test_the_dense_grid_with_its_float16_quirks(field, expected):
    resolution = META["grid_points_per_axis"]
    np.testing.assert_array_equal(grid_axis(resolution, resolution).numpy(), expected["grid_axis"])
    axis = grid_axis(resolution, resolution)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(1, -1, 3)
    with torch.no_grad():
        logits = field.decoder.logits(points, field.keys, field.values).reshape((resolution,) * 3)
    np.testing.assert_allclose(logits.numpy(), expected["dense_logits"], atol=1e-5, rtol=0)
    grid = dense_density_grid(field, resolution, STEP).values  # rounded to float16, as published
    reference = expected["dense_grid"].astype(np.float32)
    # Rounded from logits within 1e-5 of the published ones: a float16 step apart at most, or
    # near 0, where float16's steps are finer than that, as far apart as the logits (3 steps
    # of 2.4e-7 at 0.0004 on an AVX2 CPU, whose sums round differently from AVX-512's).
    differs = np.abs(grid - reference) > 0
    ulp = np.spacing(np.abs(expected["dense_grid"])).astype(np.float32)
    assert differs.mean() < 0.01 and (np.abs(grid - reference)[differs] <= ulp[differs] + 1e-5).all()


def assert_same_vertex_set(vertices: np.ndarray, reference: np.ndarray, tolerance: float) -> None:
    distance, match = cKDTree(reference).query(vertices)
    assert distance.max() < tolerance and len(np.unique(match)) == len(vertices) == len(reference)


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "coarse-to-fine"])
def test_the_mesh_is_pymcubes_on_the_published_grid(field, expected, dense):
    """PyMCubes' mesh (the triangles equal, in order) with the grid's vertex mapping, v / R
    * 2.01 - 1.005; scikit-image's (the published) has the same vertices. The random field is
    noise, so the coarse-to-fine evaluation looks at every point here."""
    mesh = extract_mesh(field, META["grid_points_per_axis"], 0.0, dense=dense)
    np.testing.assert_array_equal(mesh.faces, expected["mcubes_faces"])
    np.testing.assert_allclose(mesh.vertices, expected["mcubes_vertices"], atol=1e-4, rtol=0)
    assert_same_vertex_set(mesh.vertices, expected["dense_vertices"], 1e-4)


def test_the_published_hierarchical_grid(field, expected):
    """The published refinement to depth 6 queries every point of its lattice here (random
    logits stay in its band): step 2.01/64 from -1.005, points in float16, logits rounded to
    float16, vertices mapped as the dense grid's. The field gives its mesh's vertex set."""
    size = 2 ** META["hier_depth"]
    half = size // 2
    axis = ((torch.arange(size) - half) * 1.005 / half).half().float()
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    from openlrm_blender.engine.geometry import marching_cubes as mc

    grid = field.logits(points).reshape((size,) * 3).numpy()
    vertices, _ = mc.marching_cubes(grid, 0.0)
    assert_same_vertex_set(vertices / size * 2.01 - 1.005, expected["hier_vertices"], 1e-3)


def test_the_whole_pipeline_gives_the_published_mesh(expected):
    """The command's own path: the image prepared, three steps sampled from the seed's noise,
    the dense grid meshed; turned into our frame."""
    options = Options(weights_dir=VECTOR, tokens=META["num_tokens"], steps=META["steps"], seed=META["seed"],
                      guidance=META["guidance_scale"], resolution=META["grid_points_per_axis"], dense=True,
                      device=PARITY_DEVICE, remove_background=False)  # fmt: skip
    reports = []
    mesh = generate(VECTOR / "input.png", options, progress=lambda *report: reports.append(report)).mesh
    assert mesh.rounding == "round" and mesh.colours.shape == mesh.vertices.shape
    np.testing.assert_allclose(mesh.vertices, to_output_frame(expected["mcubes_vertices"]), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(mesh.faces, expected["mcubes_faces"])
    # The flow's steps are a stage of their own, after the image's tokens, each step named.
    stages = [stage for stage, _, _ in reports]
    assert stages.index("sample") > stages.index("encode") and "encode" not in stages[stages.index("sample") :]
    sampled = [(fraction, message) for stage, fraction, message in reports if stage == "sample"]
    steps = META["steps"]
    assert [fraction for fraction, _ in sampled] == [done / steps for done in range(steps + 1)]
    assert sampled[0][1] == f"step 0 of {steps}" and sampled[1][1].startswith(f"step 1 of {steps}, about ")
    assert sampled[-1][1] == f"step {steps} of {steps}"


def test_the_frame_turn_puts_the_input_view_at_the_front():
    """TripoSG's native +Y up with the input view from +Z: ours is +Z up, the view from -Y."""
    up, towards_camera, right = np.eye(3)[[1, 2, 0]]
    turned = to_output_frame(np.stack([up, towards_camera, right]))
    np.testing.assert_array_equal(turned, [[0, 0, 1], [0, -1, 0], [1, 0, 0]])


def test_the_real_configuration_builds_exactly_the_real_keys(tmp_path):
    """From the published configuration files: every one of the 1,349 tensors of the real
    weights at its shape, 1,986,586,817 parameters (the VAE's unused encoder included)."""
    config = write_configs(tmp_path / "real")
    with torch.device("meta"):
        model = TripoSG(config)
    ours = {f"{name}/{key}": tuple(value.shape) for name in ("image_encoder_dinov2", "transformer", "vae")
            for key, value in getattr(model, name).state_dict().items()}  # fmt: skip
    ours |= {f"vae/{key}": tuple(value.shape) for key, value in unused_layout(config.vae).items()}
    published = {}
    for line in (SPEC / "keys-triposg.tsv").read_text().splitlines():
        key, shape = line.split("\t")
        published[key] = tuple(int(size) for size in shape.split("x"))
    assert ours == published
    assert sum(math.prod(shape) for shape in ours.values()) == 1_986_586_817


def test_a_folder_is_told_by_its_files_and_a_name_by_the_registry():
    assert family_of_folder(VECTOR) is TRIPOSG
    assert family_of_name("triposg") is TRIPOSG and family_of_name("vast-ai/triposg") is TRIPOSG


# --- bad input: one sentence each, nothing written ------------------------------------------


@pytest.fixture
def folder_copy(tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(VECTOR, copy)
    for path in copy.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return copy


def run_cli(folder: Path, output: Path, *extra: str) -> int:
    return main([str(VECTOR / "input.png"), "-o", str(output), "--weights", str(folder), "--tokens", "64",
                 "--steps", "1", "--resolution", "16", "--device", "cpu", "-q", *extra])  # fmt: skip


@pytest.mark.parametrize(
    "damage, words",
    [
        (
            lambda folder: shutil.rmtree(folder / "vae"),
            "a TripoSG folder needs vae/config.json, vae/diffusion_pytorch_model.safetensors",
        ),
        (
            lambda folder: (folder / "transformer" / "diffusion_pytorch_model.safetensors").unlink(),
            "needs transformer/diffusion_pytorch_model.safetensors",
        ),
        (
            lambda folder: (folder / "transformer" / "config.json").write_text(json.dumps({"width": 64})),
            "transformer/config.json: missing",
        ),
        (lambda folder: (folder / "vae" / "config.json").write_text("{not json"), "vae/config.json: not valid JSON"),
        (
            lambda folder: (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64),
            "not a valid safetensors file",
        ),
    ],
    ids=["missing component", "missing weights", "config key missing", "config not JSON", "corrupt weights"],
)
def test_a_broken_folder_is_named_in_one_sentence(folder_copy, tmp_path, capsys, damage, words):
    damage(folder_copy)
    output = tmp_path / "out.ply"
    assert run_cli(folder_copy, output) == 1
    error = capsys.readouterr().err
    assert words in error and "Traceback" not in error and not output.exists()


def test_a_component_of_the_wrong_shape_is_named(folder_copy, tmp_path, capsys):
    config = json.loads((folder_copy / "transformer" / "config.json").read_text())
    (folder_copy / "transformer" / "config.json").write_text(json.dumps({**config, "width": 96}))
    output = tmp_path / "out.ply"
    assert run_cli(folder_copy, output) == 1
    error = capsys.readouterr().err
    assert "tensors have the wrong shape for this transformer/config.json" in error and not output.exists()


@pytest.mark.parametrize(
    "flags, words",
    [
        (("--steps", "0"), "steps = 0 is out of range: use 1 to 200"),
        (("--guidance", "25"), "guidance = 25 is out of range: use 0 to 20"),
        (("--tokens", "9000"), "tokens = 9000 is out of range: use 16 to 8192"),
        (("--input-size", "336"), "TripoSG does not use --input-size: leave it out"),
        (("--camera-distance", "2.5", "--no-recenter"), "TripoSG does not use --camera-distance or --no-recenter"),
    ],
)
def test_settings_out_of_range_are_refused(tmp_path, capsys, flags, words):
    output = tmp_path / "out.ply"
    assert run_cli(VECTOR, output, *flags) == 1
    assert words in capsys.readouterr().err and not output.exists()


def test_another_pipelines_diffusers_folder_is_named_for_what_it_is(tmp_path, capsys):
    """A model_index.json of another diffusers pipeline (Stable Diffusion's, say) is not TripoSG."""
    folder = tmp_path / "sd"
    folder.mkdir()
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"]}  # fmt: skip
    (folder / "model_index.json").write_text(json.dumps(index))
    output = tmp_path / "out.ply"
    assert run_cli(folder, output) == 1
    error = capsys.readouterr().err
    assert "its model_index.json describes a StableDiffusionPipeline, not TripoSG" in error and not output.exists()


# --- a real-size model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_size_repo(tmp_path_factory) -> Path:
    """A random TripoSG of the real size (7.9 GB in float32), shaped into an object, in the
    Hub's layout."""
    folder = tmp_path_factory.mktemp("triposg-real")
    save_model(object_model(write_configs(folder)), folder)
    return folder


def real_size_command(output: Path) -> list[str]:
    """One step without guidance, few tokens, a small grid: the real-size weights load and
    run end to end in seconds."""
    command = [sys.executable, "-m", "openlrm_blender.engine", str(VECTOR / "input.png"), "-o", str(output)]
    return [*command, "--model", "triposg", "--steps", "1", "--guidance", "1", "--tokens", "64", "--resolution", "48",
            "--device", "cpu", "--no-remove-bg"]  # fmt: skip


@pytest.mark.slow
def test_a_real_size_model_from_a_prefilled_cache_offline(real_size_repo, tmp_path):
    cache = tmp_path / "hub"
    files = [path.relative_to(real_size_repo).as_posix() for path in real_size_repo.rglob("*") if path.is_file()]
    make_hub_cache(cache, real_size_repo, REPO_ID, files)
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
    out = tmp_path / "real.ply"
    done = subprocess.run(
        real_size_command(out), check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0 and " vertices, " in done.stdout


@pytest.mark.slow
def test_a_real_size_model_over_http_from_a_stand_in_hub(real_size_repo, tmp_path):
    """The command line with --model triposg, downloading every component through
    huggingface_hub, its progress told in GB over all the files."""
    with HubServer(real_size_repo) as endpoint:
        env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_ENDPOINT=endpoint)
        for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
            env.pop(name, None)
        out = tmp_path / "real.ply"
        done = subprocess.run(
            real_size_command(out), check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=1200
        )
    assert done.returncode == 0, done.stderr[-3000:]
    snapshot = next((tmp_path / "home" / "hub" / "models--VAST-AI--TripoSG" / "snapshots").iterdir())
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert (snapshot / weights).stat().st_size == (real_size_repo / weights).stat().st_size
    assert " of 7.95 GB" in done.stderr and "model: downloading" in done.stderr
    assert out.stat().st_size > 0


@pytest.mark.slow
def test_a_download_the_disk_has_no_room_for_is_refused_up_front(real_size_repo, tmp_path):
    """Sized before any byte is fetched: a Hugging Face cache on a 64 MB file system is too
    small for 7.9 GB, said in words, with nothing downloaded."""
    small = tmp_path / "small"
    small.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)]
    if subprocess.run(mount, check=False, capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with HubServer(real_size_repo) as endpoint:
            env = dict(os.environ, HF_HUB_CACHE=str(small / "hub"), HF_ENDPOINT=endpoint)
            env.pop("HF_HUB_OFFLINE", None)
            out = tmp_path / "real.ply"
            done = subprocess.run(
                real_size_command(out), check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600
            )
        assert done.returncode == 1 and "Traceback" not in done.stderr and not out.exists()
        assert (
            "VAST-AI/TripoSG: the download needs 7.95 GB and" in done.stderr
            and "0.07 GB free; make room" in done.stderr
        )
        assert not [path for path in small.rglob("*") if path.is_file()]  # not a byte fetched
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_offline_without_the_weights_says_so(tmp_path):
    with pytest.raises(Offline, match=r"VAST-AI/TripoSG/model_index\.json: not in the Hugging Face cache"):
        resolve_model_dir("triposg", cache_dir=tmp_path, offline=True)


@torch.no_grad()
def test_the_work_reckoning_is_pytorchs_count(tiny):
    """The sidebar's estimate and the benchmark's floor count what PyTorch counts (attention
    as matrix products, which its CPU kernel hides from the counter)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from openlrm_blender.engine.models.triposg import work

    config, tokens = tiny.config, 96
    image_tokens = torch.zeros(1, 257, config.transformer.cross_attention_dim)
    keys, values = tiny.vae.latent_tokens(torch.randn(1, tokens, 64))
    runs = {
        "step": (lambda: tiny.transformer(torch.randn(2, tokens, 64), torch.full((2,), 500.0),
                                          image_tokens.expand(2, -1, -1)),
                 work.step_flop(tokens, 7.0, config.transformer)),
        "query": (lambda: tiny.vae.logits(torch.randn(1, 1, 3), keys, values), work.query_flop(tokens, config.vae)),
        "shape": (lambda: tiny.vae.latent_tokens(torch.randn(1, tokens, 64)), work.shape_flop(tokens, config.vae)),
        "encoder": (lambda: tiny.image_tokens(torch.randn(1, 3, 224, 224)), work.encoder_flop(config.image_encoder)),
    }  # fmt: skip
    for name, (run, reckoned) in runs.items():
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            run()
        assert counter.get_total_flops() == reckoned.total, name
        assert products_counted(run) == reckoned.products, name  # attention's share apart


def products_counted(run) -> int:
    """What PyTorch counts of a run through its fused CPU attention, which the counter does not
    see: the products alone."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()
