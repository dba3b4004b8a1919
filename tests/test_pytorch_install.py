"""The PyTorch installer with real pip, from a PEP 503 index on 127.0.0.1 made of this
machine's torch 2.13.0 CPU wheel: a verified install, and every failure leaving the
PyTorch in use as it was."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openlrm_blender.jobs import pytorch_install
from openlrm_blender.jobs.pytorch_install import Install
from tests.support.wheel_index import FolderServer, make_index, torch_wheels


@pytest.fixture
def previous(tmp_path) -> Path:
    """A root holding an earlier, finished install (a stand-in folder and its record)."""
    root = tmp_path / "pytorch"
    (root / pytorch_install.INSTALLED / "torch").mkdir(parents=True)
    (root / pytorch_install.INSTALLED / "torch" / "__init__.py").write_text("")
    (root / pytorch_install.MARKER).write_text(json.dumps({"variant": "CPU", "version": "earlier"}))
    return root


def assert_untouched(root: Path) -> None:
    assert pytorch_install.installed(root) == {"variant": "CPU", "version": "earlier"}
    assert (root / pytorch_install.INSTALLED / "torch" / "__init__.py").is_file()
    assert not (root / pytorch_install.STAGING).exists()  # no half-installed folder


def test_install_checks_then_switches_and_remove_goes_back(tmp_path, torch_index):
    root = tmp_path / "pytorch"
    install = Install(root, "CPU", torch_index)
    seen = []
    install.start()
    while not install.finished:
        seen.append((install.fraction, install.message))
        time.sleep(0.1)
    assert install.error is None, install.error + "\n" + install.log[-2000:]
    record = pytorch_install.installed(root)
    assert record["version"].startswith("2.13.0") and record["variant"] == "CPU" and record["matmul"]
    assert Path(record["file"]) == root / pytorch_install.INSTALLED / "torch" / "__init__.py"
    assert (root / pytorch_install.INSTALLED / "torch" / "__init__.py").is_file() and not (
        root / pytorch_install.STAGING
    ).exists()
    downloads = [message for _, message in seen if message.startswith("downloading:")]
    assert downloads, seen  # the download's progress in MB
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and 0 < max(fractions) <= 1

    folder = pytorch_install.activate(root)
    try:
        assert sys.path[0] == str(folder)
        code = f"import sys; sys.path[:] = {sys.path!r}; import torch; print(torch.__file__)"
        done = subprocess.run(  # a fresh Python on this sys.path, as the worker is started
            [sys.executable, "-I", "-c", code], check=False, capture_output=True, text=True, timeout=300
        )
        assert Path(done.stdout.strip()).is_relative_to(root / pytorch_install.INSTALLED), done.stdout + done.stderr
    finally:
        pytorch_install.remove(root)
    assert str(folder) not in sys.path and pytorch_install.installed(root) is None and not folder.exists()


def test_an_unreachable_index(previous):
    install = Install(previous, "CPU", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    install.run()
    assert install.error.startswith("pip could not install PyTorch from http://127.0.0.1:9/simple"), install.error
    assert install.error.endswith("the PyTorch in use is unchanged") and "torch" in install.log
    assert_untouched(previous)


def test_a_corrupt_wheel(previous, tmp_path):
    server = FolderServer(make_index(torch_wheels(), tmp_path / "corrupt-index", corrupt="torch"))
    try:
        install = Install(previous, "CPU", server.url)
        install.run()
    finally:
        server.close()
    assert "pip could not install PyTorch" in install.error and "HASHES" in install.log.upper()
    assert_untouched(previous)


def test_cancel_mid_download(previous, tmp_path):
    server = FolderServer(make_index(torch_wheels(), tmp_path / "slow-index"), throttle=20_000_000)
    try:
        install = Install(previous, "CPU", server.url)
        install.start()
        started = time.monotonic()
        while not install.message.startswith("downloading:") and not install.finished:
            time.sleep(0.05)
        assert install.message.startswith("downloading:"), install.message
        install.cancel()
        while not install.finished:
            time.sleep(0.05)
    finally:
        server.close()
    print(f"cancelled at {install.fraction:.0%}, {time.monotonic() - started:.1f} s in")
    assert install.error == "the PyTorch install was cancelled; the PyTorch in use is unchanged"
    assert_untouched(previous)


def test_no_space_left(previous, tmp_path, torch_index):
    small = tmp_path / "small"
    small.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(small)]
    if subprocess.run(mount, check=False, capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        root = small / "pytorch"
        root.mkdir()
        install = Install(root, "CPU", torch_index)
        install.run()
        assert "pip could not install PyTorch" in install.error and "No space left on device" in install.log
        assert not (root / pytorch_install.STAGING).exists() and pytorch_install.installed(root) is None
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert_untouched(previous)  # another root, for the same check of what stays


def test_an_unknown_variant():
    with pytest.raises(pytorch_install.InstallError, match="unknown PyTorch variant 'TPU': use CPU, CUDA, ROCM"):
        Install(Path("."), "TPU")
