"""scripts/venv.sh, which every set-up command sources: the right Python found, a broken
environment made again, a clear word when the Python is missing."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import REPO


def source_venv(tmp_path, version: str, requirements: str = "requirements-test.txt") -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        OPENLRM_VENV=str(tmp_path / "venv"),
        OPENLRM_PYTHON_VERSION=version,
        OPENLRM_REQUIREMENTS=requirements,
    )
    env.pop("VIRTUAL_ENV", None)
    command = ". scripts/venv.sh && python -c 'import sys; print(\"PYTHON\", sys.prefix, sys.version_info[:2])'"
    return subprocess.run(
        ["bash", "-c", command], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )


def test_a_missing_python_is_named_with_the_way_forward(tmp_path):
    done = source_venv(tmp_path, "3.99")
    assert done.returncode == 1 and not (tmp_path / "venv").exists()
    assert "error: Python 3.99 is needed" in done.stderr and "pyenv install 3.99" in done.stderr


def test_a_broken_environment_is_made_again(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(tmp_path / "gone" / "python3")  # its Python was removed
    (tmp_path / "requirements-none.txt").write_text("")
    requirements = os.path.relpath(tmp_path / "requirements-none.txt", REPO)
    done = source_venv(tmp_path, "3.11", requirements)
    assert done.returncode == 0, done.stderr
    assert "is not a working Python 3.11 environment: making it again" in done.stderr
    assert f"PYTHON {venv} (3, 11)" in done.stdout
    assert "Installing requirements-none.txt" in done.stderr  # what it is doing, not silence
