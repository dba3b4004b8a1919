"""Background removal: rembg's models, found in rembg's folders or downloaded (from a
server on 127.0.0.1 here) with checksum, resume and progress; masks made the way rembg's
sessions make them."""

from __future__ import annotations

import numpy as np
import pytest

from openlrm_blender.engine import BackgroundModelError, Cancelled, Options
from openlrm_blender.engine.errors import DownloadError, Offline
from openlrm_blender.engine.input import background, download
from openlrm_blender.engine.input.background import BackgroundRemover, ensure_model, get_background_remover
from openlrm_blender.engine.input.read import read_rgba
from tests.support.images import non_white_box, object_on_white
from tests.support.model_server import random_bytes


def darkness_model(path, size: int = 320) -> bytes:
    """A stand-in for rembg's models: u2net's input and outputs (size 320), or isnet's
    (1024); says 'object' where the normalised image is dark. Gives the file's bytes."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input.1"], ["mean"], axes=[1], keepdims=1),
            helper.make_node("Neg", ["mean"], ["d1"]),
            helper.make_node("Sigmoid", ["d1"], ["d0"]),
        ],
        "darkness",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, size, size])],
        [
            helper.make_tensor_value_info("d0", TensorProto.FLOAT, [1, 1, size, size]),
            helper.make_tensor_value_info("d1", TensorProto.FLOAT, [1, 1, size, size]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path.read_bytes()


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """rembg's folders under tmp_path, none of the user's own."""
    for name in ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME", "MODEL_CHECKSUM_DISABLED", background.RELEASES_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(background, "_removers", {})
    monkeypatch.setattr(download, "RETRY_PAUSE_SECONDS", 0.0)
    return tmp_path


# --- where the models live, as rembg 2.0.86 has it -----------------------------------------


def test_rembg_folders(homes, monkeypatch):
    home = homes / "home"
    assert background.model_path("u2net") == home / ".rembg" / "models" / "u2net" / "u2net.onnx"
    monkeypatch.setenv("XDG_DATA_HOME", str(homes / "xdg"))
    assert background.model_path("u2netp") == homes / "xdg" / "rembg" / "models" / "u2netp" / "u2netp.onnx"
    assert background.legacy_home() == homes / "xdg" / ".u2net"
    monkeypatch.setenv("REMBG_HOME", str(homes / "rembg"))
    assert background.model_path("isnet-general-use").parent == homes / "rembg" / "models" / "isnet-general-use"
    monkeypatch.setenv("U2NET_HOME", str(homes / "u2net"))  # still wins
    assert background.rembg_home() == background.legacy_home() == homes / "u2net"


def test_a_model_rembg_downloaded_is_used_in_its_new_or_old_folder(homes):
    old = homes / "home" / ".u2net" / "u2netp.onnx"
    old.parent.mkdir(parents=True)
    darkness_model(old)
    assert ensure_model("u2netp", offline=True) == old
    new = background.model_path("u2netp")
    new.parent.mkdir(parents=True)
    darkness_model(new)
    assert ensure_model("u2netp", offline=True) == new  # the per-model folder first


# --- the download ---------------------------------------------------------------------------


def serve(model_server, monkeypatch, name: str = "u2netp", data: bytes | None = None) -> bytes:
    data = data if data is not None else random_bytes(3 * download.CHUNK + 12345)
    md5 = model_server.add(f"/{name}.onnx", data)
    monkeypatch.setenv(background.RELEASES_VARIABLE, model_server.url)
    model = background.MODELS[name]
    monkeypatch.setitem(background.MODELS, name, background.BackgroundModel(name, md5, model.megabytes, ""))
    return data


def test_download_with_progress_into_rembgs_folder(homes, model_server, monkeypatch):
    data = serve(model_server, monkeypatch)
    seen = []
    path = ensure_model("u2netp", progress=lambda done, total: seen.append((done, total)))
    assert path == background.model_path("u2netp") and path.read_bytes() == data
    assert seen[-1] == (len(data), len(data)) and len(seen) >= 4 and seen == sorted(seen)
    assert [p.name for p in path.parent.iterdir()] == ["u2netp.onnx"]  # no partial file left
    ensure_model("u2netp")
    assert len(model_server.requests) == 1  # once there, never fetched again


def test_a_corrupt_download_is_refused_and_nothing_kept(homes, model_server, monkeypatch):
    serve(model_server, monkeypatch)
    model_server.files["/u2netp.onnx"] = random_bytes(5000, seed=9)  # not what the checksum says
    with pytest.raises(
        DownloadError, match=r"u2netp\.onnx is corrupt \(MD5 [0-9a-f]{32}, expected [0-9a-f]{32}\); nothing was kept"
    ):
        ensure_model("u2netp")
    folder = background.model_path("u2netp").parent
    assert list(folder.iterdir()) == []


def test_an_interrupted_transfer_is_resumed(homes, model_server, monkeypatch):
    data = serve(model_server, monkeypatch)
    model_server.break_after = download.CHUNK + 100
    assert ensure_model("u2netp").read_bytes() == data
    assert model_server.requests[1] == ("/u2netp.onnx", f"bytes={download.CHUNK + 100}-")


def test_a_cancelled_download_goes_on_next_time(homes, model_server, monkeypatch):
    data = serve(model_server, monkeypatch)

    def cancel_after_two_chunks(done, total):
        if done >= 2 * download.CHUNK:
            raise Cancelled("cancelled")  # what Cancel raises through the progress callback

    with pytest.raises(Cancelled):
        ensure_model("u2netp", progress=cancel_after_two_chunks)
    assert not background.model_path("u2netp").exists()
    assert ensure_model("u2netp").read_bytes() == data
    assert model_server.requests[-1][1] == f"bytes={2 * download.CHUNK}-"


def test_server_down(homes, model_server, monkeypatch):
    serve(model_server, monkeypatch)
    model_server.close()
    with pytest.raises(DownloadError, match=r"could not download http://127\.0\.0\.1:\d+/u2netp\.onnx after 4 tries"):
        ensure_model("u2netp")
    assert not background.model_path("u2netp").exists()


def test_missing_on_the_server(homes, model_server, monkeypatch):
    serve(model_server, monkeypatch)
    del model_server.files["/u2netp.onnx"]
    with pytest.raises(DownloadError, match=r"u2netp\.onnx: HTTP 404"):
        ensure_model("u2netp")
    assert len(model_server.requests) == 1  # a 404 is not retried


def test_offline_without_the_model_says_the_way_forward(homes):
    with pytest.raises(Offline) as raised:
        ensure_model("u2net", offline=True)
    message = str(raised.value)
    assert "u2net is not on this machine and downloads are off" in message
    assert str(background.model_path("u2net").parent) in message and "--no-remove-bg" in message
    assert "github.com/danielgatis/rembg/releases" in message


def test_unknown_name_or_missing_file(homes):
    with pytest.raises(BackgroundModelError, match="unknown background model 'u3net'"):
        ensure_model("u3net")
    with pytest.raises(BackgroundModelError, match=r"background removal model not found at .*nothing\.onnx"):
        get_background_remover(str(homes / "nothing.onnx"))


# --- the masks ------------------------------------------------------------------------------


@pytest.mark.parametrize("size, recipe", [(320, background.U2NET_RECIPE), (1024, background.ISNET_RECIPE)])
def test_the_recipe_is_told_by_the_models_input(homes, size, recipe):
    path = homes / f"model{size}.onnx"
    darkness_model(path, size)
    remover = BackgroundRemover(path)
    assert remover.recipe == recipe
    alpha = remover(object_on_white().astype(np.float32) / 255)
    assert alpha.shape == (64, 64)
    assert alpha[32, 24] > 0.85 and alpha[2, 2] < 0.05  # min-max normalised like rembg


def test_an_unknown_input_layout_is_refused(homes):
    darkness_model(homes / "odd.onnx", 256)
    with pytest.raises(BackgroundModelError, match="fits neither rembg's u2net nor its isnet models"):
        BackgroundRemover(homes / "odd.onnx")


def test_a_broken_model_file(homes):
    (homes / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(BackgroundModelError, match=r"broken\.onnx: not a usable ONNX model"):
        BackgroundRemover(homes / "broken.onnx")


def test_the_session_is_made_once(homes):
    darkness_model(homes / "u2net.onnx")
    assert get_background_remover(str(homes / "u2net.onnx")) is get_background_remover(str(homes))


def test_prepared_image_without_alpha_uses_the_model(homes):
    pytest.importorskip("torch", reason="the model's input is a PyTorch tensor")
    from openlrm_blender.engine.input.prepare import prepare_image

    darkness_model(homes / "u2net.onnx")
    tensor = prepare_image(read_rgba(object_on_white()), 56, remove_background=get_background_remover(str(homes)))
    top, left, bottom, right = non_white_box(tensor)
    assert max(bottom - top, right - left) == pytest.approx(0.8 * 56, abs=3)


def test_the_pipeline_downloads_the_model_in_its_model_stage(homes, model_server, monkeypatch, tiny_dir):
    pytest.importorskip("torch", reason="the pipeline runs the model")
    from openlrm_blender.engine.pipeline import generate

    serve(model_server, monkeypatch, "u2net", darkness_model(homes / "stand-in.onnx"))
    stages = []
    options = Options(weights_dir=tiny_dir, input_size=56, resolution=32, background_model="u2net")
    result = generate(
        object_on_white(), options, progress=lambda stage, fraction, message: stages.append((stage, message))
    )
    assert len(result.mesh.vertices) > 0
    downloads = [message for stage, message in stages if "downloading the background removal model" in message]
    assert downloads and {stage for stage, message in stages if message in downloads} == {"model"}
    assert background.model_path("u2net").is_file()
