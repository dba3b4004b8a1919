"""Model files: key layout of the real weights, local folders, the Hub cache, and every error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from openlrm_blender.engine import WeightsError
from openlrm_blender.engine.errors import Offline
from openlrm_blender.engine.models.openlrm.config import ModelConfig
from openlrm_blender.engine.models.openlrm.model import OpenLRM
from openlrm_blender.engine.models.openlrm.weights import (
    MODEL_FILES,
    download_model,
    load_model,
    published_state,
    repo_id_for,
)
from openlrm_blender.engine.models.registry import resolve_model_dir
from tests.conftest import REPO, SPEC, TINY_GRID, TINY_SIZE
from tests.support.hub import FakeHub, HubServer, make_hub_cache
from tests.support.random_models import PUBLISHED_CONFIGS


def read_key_table(size: str) -> dict[str, tuple[int, ...]]:
    rows = (SPEC / f"keys-{size}.tsv").read_text().splitlines()
    table = {}
    for row in rows:
        if row.startswith(("#", "key\t")):
            continue
        key, shape = row.split("\t")
        table[key] = tuple(int(n) for n in shape.split("x"))
    return table


@pytest.mark.parametrize("size", ["small", "base", "large"])
def test_state_dict_layout_matches_real_weights(size):
    """Full-size models (built on the meta device) have exactly the published keys and shapes."""
    with torch.device("meta"):
        model = OpenLRM(ModelConfig.from_dict(PUBLISHED_CONFIGS[size]))
    ours = {key: tuple(value.shape) for key, value in published_state(model).items()}
    assert ours == read_key_table(size)


def test_cross_attention_layouts(small_model_dir, base_model_dir):
    small = load_file(str(small_model_dir / "model.safetensors"))
    base = load_file(str(base_model_dir / "model.safetensors"))
    assert "transformer.layers.0.cross_attn.q_proj_weight" in small
    assert "transformer.layers.0.cross_attn.in_proj_weight" not in small
    assert "transformer.layers.0.cross_attn.in_proj_weight" in base
    for folder in (small_model_dir, base_model_dir):
        assert isinstance(load_model(folder), OpenLRM)


def test_packed_and_separate_cross_attention_agree():
    """The packed weight split into q/k/v gives the same attention as the separate layout."""
    from openlrm_blender.engine.models.openlrm.transformer import MultiHeadAttention

    torch.manual_seed(0)
    packed = MultiHeadAttention(64, 4)
    torch.nn.init.normal_(packed.in_proj_weight)
    separate = MultiHeadAttention(64, 4, context_width=48)
    assert not separate.packed
    x, context = torch.randn(2, 5, 64), torch.randn(2, 7, 64)
    reference = torch.nn.MultiheadAttention(64, 4, bias=False, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(packed.in_proj_weight)
        reference.out_proj.weight.copy_(packed.out_proj.weight)
        expected, _ = reference(x, context, context, need_weights=False)
    torch.testing.assert_close(packed(x, context), expected, atol=1e-5, rtol=1e-5)


def test_model_names_and_repo_ids():
    assert repo_id_for("openlrm-obj-large-1.1") == "zxhezexin/openlrm-obj-large-1.1"
    assert repo_id_for("someone/my-lrm") == "someone/my-lrm"
    with pytest.raises(WeightsError, match="unknown model name 'openlrm-huge'"):
        repo_id_for("openlrm-huge")


def test_hub_cache_offline(tmp_path, small_model_dir, monkeypatch):
    snapshot = make_hub_cache(tmp_path / "hub", small_model_dir, "zxhezexin/openlrm-mix-small-1.1", MODEL_FILES)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = download_model("openlrm-mix-small-1.1", cache_dir=tmp_path / "hub")
    assert folder == snapshot
    assert isinstance(load_model(folder), OpenLRM)


def test_hub_cache_offline_nothing_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        Offline,
        match=r"openlrm-obj-base-1.1/config.json: not in the Hugging Face cache .*downloads are off "
        r"\(Blender.s Allow Online Access, --offline or HF_HUB_OFFLINE\)",
    ):
        resolve_model_dir("openlrm-obj-base-1.1", cache_dir=tmp_path / "empty")


def test_hub_cache_via_hf_home_in_a_fresh_process(tmp_path, tiny_dir):
    """HF_HOME and HF_HUB_OFFLINE as a user sets them, through the command line."""
    make_hub_cache(tmp_path / "home" / "hub", tiny_dir, "someone/tiny-lrm", MODEL_FILES)
    env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    out = tmp_path / "tiny.ply"
    command = [sys.executable, "-m", "openlrm_blender.engine", str(tiny_dir / "input.png"), "-o", str(out)]
    command += ["--model", "someone/tiny-lrm", "--input-size", str(TINY_SIZE), "--resolution", str(TINY_GRID), "-q"]
    done = subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0


def test_download_through_the_hub_client(tmp_path, tiny_dir):
    """A real download over HTTP (a local stand-in for the Hub, via HF_ENDPOINT): files land in
    the HF_HOME cache, byte progress reaches the progress bar, the mesh is written."""
    with HubServer(tiny_dir) as endpoint:
        env = dict(os.environ, HF_HOME=str(tmp_path / "home"), HF_ENDPOINT=endpoint)
        for name in ("HF_HUB_OFFLINE", "HF_HUB_CACHE"):
            env.pop(name, None)
        out = tmp_path / "tiny.ply"
        command = [sys.executable, "-m", "openlrm_blender.engine", str(tiny_dir / "input.png"), "-o", str(out)]
        command += ["--model", "someone/tiny-lrm", "--input-size", str(TINY_SIZE), "--resolution", str(TINY_GRID)]
        done = subprocess.run(command, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "100% model: downloading model.safetensors" in done.stderr
    snapshot = tmp_path / "home" / "hub" / "models--someone--tiny-lrm" / "snapshots" / FakeHub.commit
    assert (snapshot / "model.safetensors").read_bytes() == (tiny_dir / "model.safetensors").read_bytes()
    assert out.stat().st_size > 0


# --- errors, each with its message -------------------------------------------------------


@pytest.fixture
def model_copy(tmp_path, tiny_dir) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_dir / name, folder / name)
    return folder


def test_missing_weights_file(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"model\.safetensors: file not found"):
        load_model(model_copy)


def test_pickle_checkpoint_is_refused(model_copy):
    (model_copy / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, model_copy / "pytorch_model.bin")
    with pytest.raises(WeightsError, match=r"pytorch_model\.bin is a pickle checkpoint, which is never loaded"):
        load_model(model_copy)


def test_missing_config(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(WeightsError, match=r"config\.json: file not found"):
        load_model(model_copy)


def test_config_not_json(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(WeightsError, match=r"config\.json: not valid JSON"):
        load_model(model_copy)


def test_config_missing_key(model_copy):
    raw = json.loads((model_copy / "config.json").read_text())
    del raw["triplane_dim"]
    (model_copy / "config.json").write_text(json.dumps(raw))
    with pytest.raises(WeightsError, match=r"config\.json: missing keys triplane_dim"):
        load_model(model_copy)


def test_truncated_weights(model_copy):
    path = model_copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(WeightsError, match=r"model\.safetensors: not a valid safetensors file, truncated or corrupt"):
        load_model(model_copy)


def test_corrupt_header(model_copy):
    path = model_copy / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:20] = b"garbage!!!!!"
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"model\.safetensors: not a valid safetensors file"):
        load_model(model_copy)


def _rewrite(folder: Path, change) -> None:
    state = load_file(str(folder / "model.safetensors"))
    change(state)
    save_file(state, str(folder / "model.safetensors"))


def test_missing_keys(model_copy):
    _rewrite(model_copy, lambda state: state.pop("upsampler.bias"))
    with pytest.raises(
        WeightsError, match=r"model\.safetensors: 1 tensors missing for this config\.json: upsampler\.bias"
    ):
        load_model(model_copy)


def test_unexpected_keys(model_copy):
    _rewrite(model_copy, lambda state: state.update({"extra.weight": torch.zeros(2)}))
    with pytest.raises(WeightsError, match=r"1 unexpected tensors for this config\.json: extra\.weight"):
        load_model(model_copy)


def test_unused_mask_token_is_accepted(model_copy):
    """The spec says published files may carry an unused DINOv2 mask token."""
    _rewrite(model_copy, lambda state: state.update({"encoder.model.mask_token": torch.zeros(1, 48)}))
    assert isinstance(load_model(model_copy), OpenLRM)


def test_wrong_shapes(model_copy):
    _rewrite(model_copy, lambda state: state.update({"pos_embed": torch.zeros(1, 10, 64)}))
    with pytest.raises(
        WeightsError, match=r"1 tensors have the wrong shape .*: pos_embed is 1x10x64, expected 1x192x64"
    ):
        load_model(model_copy)


def test_missing_folder(tmp_path):
    with pytest.raises(WeightsError, match=r"nowhere: model folder not found"):
        resolve_model_dir("openlrm-mix-base-1.1", weights_dir=tmp_path / "nowhere")
    with pytest.raises(WeightsError, match=r"model folder not found"):
        resolve_model_dir(str(tmp_path / "nowhere"))
