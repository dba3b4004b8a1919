"""Windows' path limit as the add-on meets it: the messages when a user's folders are too deep
(Windows itself is simulated: long paths off), and the installer refusing before it downloads.
The built zips and the installer's layout are checked in test_install.py."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from openlrm_blender.jobs import pytorch_install, windows_paths
from openlrm_blender.jobs.windows_paths import deepest, too_long, unpack_problem, windows_length, written_paths


@pytest.fixture
def long_paths_off(monkeypatch):
    monkeypatch.setattr(windows_paths, "long_paths_enabled", lambda: False)


def test_written_paths_include_the_bytecode_python_writes():
    paths = list(written_paths(["pkg/__init__.py", "pkg/data.bin"], "cpython-311"))
    assert paths == ["pkg/__init__.py", "pkg/__pycache__/__init__.cpython-311.pyc", "pkg/data.bin"]


def test_deepest_and_windows_length(tmp_path):
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("x/a.py", "")
        archive.writestr("x-1.0.dist-info/licenses/" + "d/" * 20 + "LICENSE", "")
    assert deepest(wheel, "cpython-313") == "x-1.0.dist-info/licenses/" + "d/" * 20 + "LICENSE"
    assert windows_length("C:\\Users\\me\\", "a/b") == len("C:\\Users\\me\\a/b")


def test_a_fitting_folder_is_no_problem(long_paths_off):
    assert too_long(Path("C:/short"), 121, "PyTorch's files") is None


def test_too_deep_a_folder_is_named_with_windows_long_path_setting(long_paths_off):
    folder = Path("C:/Users/" + "a" * 80 + "/AppData/Roaming/Blender Foundation/Blender/5.0/extensions/.user/x")
    message = too_long(folder, 121, "PyTorch's files")
    assert message.startswith(f"PyTorch's files need paths of up to {windows_length(folder, 'x' * 121)} characters")
    assert "over Windows' limit of 259" in message and "Enable Win32 long paths" in message
    assert "LongPathsEnabled" in message


def test_where_long_paths_are_on_nothing_is_too_long(monkeypatch):
    monkeypatch.setattr(windows_paths, "long_paths_enabled", lambda: True)
    assert too_long(Path("C:/" + "a" * 300), 121, "files") is None


def test_a_wheel_blender_could_not_unpack_is_named(tmp_path, long_paths_off):
    """The extension's layout (<extensions>/user_default/<id>/wheels) below a deep user folder."""
    extensions = tmp_path / ("deep-" * 20) / "extensions"
    extension = extensions / "user_default" / "openlrm_blender"
    (extension / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(extension / "wheels" / "fine-1.0-py3-none-any.whl", "w") as archive:
        archive.writestr("fine/__init__.py", "")
    assert unpack_problem(extension) is None
    with zipfile.ZipFile(extension / "wheels" / "torch-2.13.0-cp311-cp311-win_amd64.whl", "w") as archive:
        archive.writestr("torch-2.13.0.dist-info/licenses/" + "third_party/" * 12 + "LICENSE.txt", "")
    message = unpack_problem(extension)
    assert message.startswith("Blender could not unpack torch-2.13.0-cp311-cp311-win_amd64.whl: its files need paths")
    assert str(extensions / ".local" / "lib") in message and message.endswith("then reinstall the extension")


def test_the_installer_refuses_a_folder_too_deep_before_downloading(tmp_path, long_paths_off):
    root = tmp_path / ("deep-" * 30)
    (root / pytorch_install.INSTALLED / "torch").mkdir(parents=True)
    (root / pytorch_install.MARKER).write_text(json.dumps({"variant": "CPU", "version": "earlier"}))
    install = pytorch_install.Install(root, "CPU", "http://127.0.0.1:9/simple")
    install.run()
    assert install.error.startswith("PyTorch's files need paths of up to"), install.error
    assert "long paths" in install.error and install.error.endswith("the PyTorch in use is unchanged")
    assert install.log == ""  # pip never ran
    assert pytorch_install.installed(root) == {"variant": "CPU", "version": "earlier"}
    assert not (root / pytorch_install.STAGING).exists()
