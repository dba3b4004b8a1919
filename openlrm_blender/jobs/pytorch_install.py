"""A PyTorch of the user's choice (CPU, CUDA or ROCm) installed by the add-on into its own
folder with Blender's Python's pip, checked in a fresh process before it is used; never
touches ``bpy``.

Layout under the add-on's user folder (``root``): ``torch/`` (pip's ``--target``) with
``torch.json`` beside it, written last, so a folder without it was never finished;
``next/`` for an install under way and ``old/`` for the one it replaces; pip's own
temporary files go to the system's temporary folder. The names are short on purpose:
Windows' 260-character limit leaves about 130 characters below the user folder
(``windows_paths``). Only a verified install replaces ``torch/``: a failed or cancelled
one leaves the PyTorch in use as it was. The model runs in the worker
process, which takes Blender's ``sys.path``, and Blender's own process never imports
PyTorch, so a new PyTorch is used from the next run, with no restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..engine import EngineError
from .task import Task
from .windows_paths import TORCH_DEPTH, too_long

INDEXES = {  # PyTorch's own wheel indexes, by variant
    "CPU": "https://download.pytorch.org/whl/cpu",
    "CUDA": "https://download.pytorch.org/whl/cu128",
    "ROCM": "https://download.pytorch.org/whl/rocm6.4",
}
# torch 2.13's Windows wheels hold files too deep for Windows' path limit (windows_paths).
REQUIREMENT = "torch>=2.4,!=2.13.*" if sys.platform == "win32" else "torch>=2.4"
INSTALLED, STAGING, PREVIOUS, MARKER = "torch", "next", "old", "torch.json"
PROBE_SECONDS = 300
_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window pops up

# Imports the PyTorch in FOLDER alone (ahead of everything) and tries it on DEVICE.
PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
device = sys.argv[2]
x = torch.randn(64, 64, device=device)
ok = bool(torch.isfinite(x @ x).all())
cuda = torch.cuda.is_available()
print(json.dumps({
    "version": torch.__version__,
    "file": torch.__file__,
    "matmul": ok,
    "cuda": torch.version.cuda,
    "hip": getattr(torch.version, "hip", None),
    "devices": [
        f"{torch.cuda.get_device_name(i)} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GB)"
        for i in range(torch.cuda.device_count())
    ] if cuda else [],
    "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
}))
"""
# The wheels pip announces: "Downloading <url or name> (192.3 MB)".
_ANNOUNCED = re.compile(r"Downloading \S+ \(([\d.]+) (kB|MB|GB)\)")
_UNITS = {"kB": 1e3, "MB": 1e6, "GB": 1e9}


class InstallError(EngineError):
    """The install failed; the PyTorch in use is untouched."""


def installed(root: Path) -> dict | None:
    """What the add-on installed (variant, version, devices ...), if an install finished."""
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def activate(root: Path) -> Path | None:
    """Put the installed PyTorch ahead of the bundled one on ``sys.path`` (the worker's too)."""
    folder = root / INSTALLED
    if installed(root) is None or not folder.is_dir():
        return None
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


def remove(root: Path) -> None:
    """Back to the bundled PyTorch (or Blender's)."""
    folder = root / INSTALLED
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    (root / MARKER).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def probe(folder: Path, device: str) -> dict:
    """The PyTorch in ``folder``, imported and tried in a fresh process."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", PROBE, str(folder), device],
            check=False,
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            creationflags=_NO_WINDOW,
        )
    except subprocess.TimeoutExpired:
        raise InstallError(f"the PyTorch in {folder} did not answer within {PROBE_SECONDS} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallError(f"the new PyTorch does not work on {device}: {last}")
    report = json.loads(lines[-1])
    if not Path(report["file"]).resolve().is_relative_to(folder.resolve()):
        raise InstallError(f"the check imported another PyTorch ({report['file']}), not the new one in {folder}")
    if not report["matmul"]:
        raise InstallError(f"the new PyTorch {report['version']} gives wrong numbers on {device}")
    return report


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # pip renames and removes its files as it goes
                total += os.path.getsize(os.path.join(path, name))
    return total


class Install(Task):
    """One install; ``message`` says where it is, ``log`` holds pip's output at the end and
    ``result`` the record of the verified install."""

    thread_name = "openlrm-pytorch-install"

    def __init__(self, root: Path, variant: str, index_url: str = "") -> None:
        if variant not in INDEXES:
            raise InstallError(f"unknown PyTorch variant {variant!r}: use {', '.join(INDEXES)}")
        super().__init__()
        self.root, self.variant = root, variant
        self.index_url = index_url or INDEXES[variant]
        self.message = "starting pip"
        self.log = ""
        self._process: subprocess.Popen | None = None

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def _check_path_lengths(self, temporary: Path) -> None:
        """Refuse, before downloading, an install whose files Windows could not write."""
        pip_target = temporary / "pip-target-xxxxxxxx" / "lib" / "python"  # where pip unpacks before moving
        for folder in (self.staging, self.root / INSTALLED, self.root / PREVIOUS, pip_target):
            problem = too_long(folder, TORCH_DEPTH, "PyTorch's files")
            if problem:
                raise InstallError(problem)

    def _pip(self, temporary: Path) -> None:
        """pip into the staging folder, with the download's progress from its temporary files."""
        self._check_path_lengths(temporary)
        self.staging.mkdir(parents=True)
        command = [
            sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "--no-cache-dir",
            "--progress-bar", "off", "--retries", "2", "--timeout", "30", "--only-binary", ":all:",
            "--target", str(self.staging), "--index-url", self.index_url, REQUIREMENT,
        ]  # fmt: skip
        # The user's pip configuration stays out: the index is the one chosen here.
        env = dict(
            os.environ, PIP_CONFIG_FILE=os.devnull, TMPDIR=str(temporary), TEMP=str(temporary), TMP=str(temporary)
        )
        log_path = temporary / "pip.log"
        with open(log_path, "w") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, creationflags=_NO_WINDOW
            )
            if self._token.cancelled:
                self._process.kill()
            done = 0  # the most seen in pip's temporary folder (it removes each wheel once installed)
            while self._process.poll() is None:
                time.sleep(0.2)
                announced = sum(float(n) * _UNITS[unit] for n, unit in _ANNOUNCED.findall(log_path.read_text()))
                done = max(done, _folder_bytes(temporary) - log_path.stat().st_size)
                if announced:
                    self.fraction = max(self.fraction, min(0.9 * done / announced, 0.9))
                    self.message = (
                        f"downloading: {done / 1e6:.0f} of {announced / 1e6:.0f} MB" if done < 0.99 * announced
                        else "installing"
                    )  # fmt: skip
        self.log = log_path.read_text(errors="replace")
        self._token.check()
        if self._process.returncode != 0:
            tail = [line for line in self.log.splitlines() if line.strip()][-1:] or ["no output"]
            raise InstallError(f"pip could not install PyTorch from {self.index_url}: {tail[0].strip()}")

    def _switch(self, report: dict) -> dict:
        """The verified install becomes the one in use; the old one goes only after that."""
        folder, old = self.root / INSTALLED, self.root / PREVIOUS
        (self.root / MARKER).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        self.staging.rename(folder)
        checked = Path(report["file"]).resolve().relative_to(self.staging.resolve())
        moved = folder / checked  # checked in staging, used from here
        record = dict(report, file=str(moved), variant=self.variant, index_url=self.index_url)
        record["installed"] = time.strftime("%Y-%m-%d")
        (self.root / MARKER).write_text(json.dumps(record, indent=1))
        shutil.rmtree(old, ignore_errors=True)
        return record

    def work(self) -> dict:
        temporary = Path(tempfile.mkdtemp(prefix="openlrm-pip-"))
        try:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._pip(temporary)
            self.fraction, self.message = 0.92, "checking the new PyTorch in a fresh process"
            device = "cpu" if self.variant == "CPU" else "cuda"  # ROCm builds answer to "cuda" too
            report = probe(self.staging, device)
            self._token.check()
            record = self._switch(report)
            self.fraction, self.message = 1.0, f"PyTorch {report['version']} installed"
            return record
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
            shutil.rmtree(temporary, ignore_errors=True)

    def explain(self, error) -> str:
        if error is None:
            return "the PyTorch install was cancelled; the PyTorch in use is unchanged"
        if isinstance(error, InstallError):
            return f"{error}; the PyTorch in use is unchanged"
        return f"the PyTorch install failed ({error}); the PyTorch in use is unchanged"

    def cancel(self) -> None:
        super().cancel()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()


class Check(Task):
    """What the PyTorch in use sees (``probe`` on the CPU), in a thread: its devices for the
    preferences, without importing PyTorch into Blender. It ends by itself within its time limit."""

    thread_name = "openlrm-pytorch-check"

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder  # the folder that holds the torch package

    def work(self) -> dict:
        return probe(self.folder, "cpu")

    def explain(self, error) -> str:
        return f"checking the PyTorch in {self.folder} failed: {error}"


def describe_devices(report: dict) -> str:
    """What a probe found, for people to read."""
    devices = list(report["devices"])
    if report.get("hip"):
        devices = [f"ROCm {report['hip']}: {device}" for device in devices]
    elif report.get("cuda"):
        devices = [f"CUDA {report['cuda']}: {device}" for device in devices] or [
            f"CUDA {report['cuda']} build, no GPU seen"
        ]
    if report.get("mps"):
        devices.append("Apple MPS")
    return ", ".join(["CPU", *devices])


def machine_gpus() -> list[str]:
    """What the machine has, whatever PyTorch sees: NVIDIA GPUs (nvidia-smi), ROCm on Linux."""
    found = []
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            check=False, capture_output=True, text=True, timeout=10, creationflags=_NO_WINDOW,
        )  # fmt: skip
        found += [f"NVIDIA {line.strip()}" for line in done.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    if sys.platform.startswith("linux") and (Path("/opt/rocm").is_dir() or Path("/dev/kfd").exists()):
        found.append("ROCm (AMD GPU driver present)")
    return found
