"""Windows' 260-character path limit, for what Blender and pip write; never touches ``bpy``.

Windows refuses a path longer than 259 characters (MAX_PATH, 260 with its terminating NUL)
unless a user turns long paths on. Blender unpacks an extension's wheels below
``...\\extensions\\.local\\lib\\python3.X\\site-packages`` and the PyTorch installer writes
below the extension's user folder: a wheel's deepest file decides whether that works.
PyTorch 2.13's wheels carry licence files 167 characters deep, which fit nowhere below a
user's Blender folders; 2.14.1's deepest file is 121 characters.
"""

from __future__ import annotations

import posixpath
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

LONGEST_PATH = 259  # characters: MAX_PATH less the terminating NUL
# The deepest path a PyTorch wheel the add-on bundles or installs puts below its site folder
# (torch 2.14.1 for Windows, measured; tests/test_windows_paths.py checks the real wheels).
TORCH_DEPTH = 121
PYC_TAG = f"cpython-{sys.version_info.major}{sys.version_info.minor}"


def written_paths(names: Iterable[str], pyc_tag: str = PYC_TAG) -> Iterable[str]:
    """Every relative path unpacking ``names`` leads to: the files themselves, and the
    ``__pycache__`` file Python writes beside each module when it is first imported."""
    for name in names:
        yield name
        if name.endswith(".py"):
            folder, module = posixpath.split(name)
            yield posixpath.join(folder, "__pycache__", f"{module[:-3]}.{pyc_tag}.pyc")


def deepest(wheel: Path, pyc_tag: str = PYC_TAG) -> str:
    """The longest path, relative to where it is unpacked, that a wheel (or zip) writes."""
    with zipfile.ZipFile(wheel) as archive:
        return max(written_paths(archive.namelist(), pyc_tag), key=len, default="")


def windows_length(folder: str | Path, relative: str) -> int:
    """Characters of ``relative`` below ``folder`` as Windows spells it (one separator between)."""
    return len(str(folder).rstrip("\\/")) + 1 + len(relative)


def long_paths_enabled() -> bool:
    """Whether Windows lets programs use paths past 259 characters (off by default)."""
    if sys.platform != "win32":
        return True
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            return winreg.QueryValueEx(key, "LongPathsEnabled")[0] == 1
    except OSError:
        return False


def too_long(folder: Path, depth: int, what: str) -> str | None:
    """A message when files ``depth`` characters deep below ``folder`` would pass Windows'
    limit (None where they fit, or on a system without the limit)."""
    length = windows_length(folder, "x" * depth)
    if length <= LONGEST_PATH or long_paths_enabled():
        return None
    return (
        f"{what} need paths of up to {length} characters below {folder}, over Windows' limit of {LONGEST_PATH}: "
        "turn on Windows' long paths (Group Policy 'Enable Win32 long paths', or LongPathsEnabled = 1 under "
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\FileSystem), then try again"
    )


def unpack_problem(extension: Path) -> str | None:
    """Why Blender could not unpack one of the extension's bundled wheels, where Windows'
    limit is the cause (Blender then leaves that wheel out whole): None elsewhere."""
    if long_paths_enabled():
        return None
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    # Blender's layout: <extensions>/<repository>/<id> and <extensions>/.local/lib/<python>/site-packages
    site_packages = extension.parent.parent / ".local" / "lib" / python / "site-packages"
    for wheel in sorted((extension / "wheels").glob("*.whl")):
        problem = too_long(site_packages, len(deepest(wheel)), f"Blender could not unpack {wheel.name}: its files")
        if problem:
            return problem.replace("then try again", "then reinstall the extension")
    return None
