"""Build the Blender extension zips: one per platform and Blender Python, every dependency
bundled as wheels.

    python build.py                          # linux-x64, windows-x64, macos-arm64; Blender 4.2-5.0 and 5.1+
    python build.py --platform linux-x64     # both Linux zips
    python build.py --repository             # ... and a repository listing over dist/ (index.json, index.html)
    python build.py --torch-index https://download.pytorch.org/whl/cpu
                                             # PyTorch's own CPU wheels (Linux on Python 3.13 has none on PyPI)
    python build.py --platform linux-x64 --blender system-3.13 --no-torch
                                             # a Linux distribution's Blender on Python 3.13 (Debian's 4.3)

blender.org's Blender 4.2 to 5.0 run CPython 3.11 with NumPy 1.26, Blender 5.1 and newer
CPython 3.13 with NumPy 2.3: an extension's wheels must match the Python of the Blender
that loads it, so each platform gets one zip per line, whose manifest's version range
(``blender_version_min``/``blender_version_max``) says which Blenders take it. Wheels are
downloaded (binary only) into ``wheels/<platform>-<abi>/``. NumPy is not bundled: Blender
ships its own, and the other wheels are resolved against that version.

PyTorch comes from PyPI, except for Linux on Python 3.13, where PyPI has only the CUDA
build with several GB of NVIDIA packages: there it comes from ``--torch-find-links`` or
``--torch-index`` when given and found there, and otherwise the zip is built without
PyTorch (the add-on then says how to get it). The zips are made and validated by
Blender's own extension tool (``blender_ext.py``, shipped inside the ``bpy`` package),
which also writes the repository listing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "openlrm_blender"
MANIFEST = ROOT / "blender_manifest.toml"


@dataclass(frozen=True)
class BlenderLine:
    """Blenders that share one Python (and NumPy): one zip per platform serves them all."""

    label: str  # in the zip's file name
    python: str
    numpy: str  # the NumPy these Blenders ship: not bundled, the other wheels are resolved against it
    version_min: str
    version_max: str | None = None  # the first Blender version not supported
    listed: bool = True  # offered in the repository listing


BLENDER_LINES = {
    # Blender 4.2 to 5.0: CPython 3.11, NumPy 1.26.4 (bpy 5.0.1 requires numpy<2).
    "4.2": BlenderLine("blender4.2-5.0", "3.11", "numpy==1.26.4", "4.2.0", "5.1.0"),
    # Blender 5.1 and newer: CPython 3.13, NumPy 2.3.4 (Blender's build versions; bpy 5.2.3 requires numpy>=2.2,<3).
    "5.1": BlenderLine("blender5.1-and-newer", "3.13", "numpy==2.3.4", "5.1.0"),
    # A Linux distribution's Blender on its system Python 3.13 (Debian trixie: Blender 4.3, NumPy 2.2).
    "system-3.13": BlenderLine("system-python3.13", "3.13", "numpy>=2.2,<2.3", "4.2.0", listed=False),
}
DEFAULT_LINES = ("4.2", "5.1")

# Blender platform name -> pip platform tags, newest first.
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}
# What the add-on needs at run time (the engine's requirements less NumPy). torch is
# fetched on its own without dependencies: pip judges its platform markers by this
# machine, so for Windows or macOS it would ask for Linux's CUDA packages. Its pure-Python
# dependencies are listed here instead (torch 2.13.0's and 2.14.1's Requires-Dist).
TORCH = "torch==2.13.0"
# Windows: torch 2.13's wheel holds licence files 167 characters deep, past Windows' path
# limit below Blender's folders; 2.14.1's deepest is 121 (openlrm_blender/windows_paths.py).
PLATFORM_TORCH = {"windows-x64": "torch==2.14.1"}
TORCH_REQUIREMENTS = [
    "filelock",
    "typing-extensions>=4.10.0",
    "setuptools>=77.0.3",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec>=0.8.5",
]
REQUIREMENTS = [
    "safetensors>=0.4",
    "huggingface_hub>=0.25",
    "pillow>=10",
    "onnxruntime>=1.18",
    "pyyaml>=6",  # TripoSR's config.yaml
    "xatlas==0.0.11",  # UVs for textured output
    "fast-simplification==0.2.0",  # simplification for textured output
]
# Dependencies behind platform markers that pip, judging markers by this machine, would miss.
PLATFORM_REQUIREMENTS = {"windows-x64": ["colorama"]}  # tqdm and click use it on Windows
# Packages Blender ships itself: bundling another version of these would clash.
PROVIDED_BY_BLENDER = {"numpy"}


@dataclass(frozen=True)
class TorchSource:
    """Where PyTorch wheels come from besides PyPI; ``bundle=False`` leaves PyTorch out."""

    find_links: Path | None = None
    index: str | None = None
    bundle: bool = True

    def pip_arguments(self, platform: str, python: str) -> list[str] | None:
        """pip's source arguments for torch, or None where no usable torch can come."""
        if not self.bundle:
            return None
        arguments = ["--find-links", str(self.find_links)] if self.find_links else []
        if platform == "linux-x64" and python != "3.11":
            # PyPI's Linux torch for this Python is the CUDA build: only the given sources.
            if not (self.find_links or self.index):
                return None
            return ["--no-index", *arguments] if not self.index else ["--index-url", self.index, *arguments]
        return arguments + (["--extra-index-url", self.index] if self.index else [])


def wheel_name(path: Path) -> str:
    return re.sub(r"[-_.]+", "_", path.name.split("-")[0]).lower()


def download_wheels(platform: str, line: BlenderLine, cache: Path, offline: bool, torch: TorchSource) -> list[Path]:
    """Binary wheels of the requirements and everything they need, for one platform and line.

    pip saves exactly what it resolves into a fresh folder, taking what it can from the
    wheel cache (a find-links source), and the cache keeps a copy of anything new.
    """
    abi = "cp" + line.python.replace(".", "")
    cached = cache / f"{platform}-{abi}"
    cached.mkdir(parents=True, exist_ok=True)
    chosen = ROOT / "build" / "wheels" / f"{platform}-{line.label}"
    shutil.rmtree(chosen, ignore_errors=True)
    chosen.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "--python-version", line.python, "--implementation", "cp", "--abi", abi]
    command += ["--dest", str(chosen), "--find-links", str(cached), *(["--no-index"] if offline else [])]
    for tag in PLATFORMS[platform]:
        command += ["--platform", tag]
    requirements = [line.numpy, *REQUIREMENTS, *PLATFORM_REQUIREMENTS.get(platform, [])]
    torch_arguments = torch.pip_arguments(platform, line.python)
    torch_requirement = PLATFORM_TORCH.get(platform, TORCH)
    if (
        torch_arguments is not None
        and subprocess.run([*command, *torch_arguments, "--no-deps", torch_requirement], check=False).returncode == 0
    ):
        requirements += TORCH_REQUIREMENTS
    else:
        print(f"{platform}, Blender {line.version_min}+ (Python {line.python}): built without PyTorch")
    subprocess.run([*command, *requirements], check=True)
    for wheel in chosen.glob("*.whl"):
        if not (cached / wheel.name).exists():
            shutil.copy2(wheel, cached / wheel.name)
    return [wheel for wheel in sorted(chosen.glob("*.whl")) if wheel_name(wheel) not in PROVIDED_BY_BLENDER]


def staged_manifest(line: BlenderLine, platform: str, wheels: list[Path]) -> str:
    """The repository's manifest with this line's version range, the platform and its wheels."""
    text = MANIFEST.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^blender_version_min = ".*"$', f'blender_version_min = "{line.version_min}"', text)
    maximum = f'blender_version_max = "{line.version_max}"\n' if line.version_max else ""
    listing = 'platforms = ["{}"]\nwheels = [\n{}]\n'.format(
        platform, "".join(f'  "./wheels/{wheel.name}",\n' for wheel in wheels)
    )
    return text.replace("\n[permissions]", f"\n{maximum}{listing}\n[permissions]", 1)


def blender_ext() -> Path:
    """Blender's own extension tool, from the installed ``bpy`` package."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build.py needs Blender's extension tool: pip install 'bpy==4.2.*'")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        sys.exit("blender_ext.py not found inside the bpy package")
    return found[-1]


def stage(line: BlenderLine, platform: str, wheels: list[Path], folder: Path) -> Path:
    """The extension's source as Blender's builder wants it: package, manifest, wheels.

    One platform at a time: the builder splits platform-specific wheels by platform, but
    would put the pure-Python wheels of every platform (torch's for Windows, say) in each zip.
    """
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(PACKAGE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "blender_manifest.toml").write_text(staged_manifest(line, platform, wheels), encoding="utf-8")
    (folder / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy(wheel, folder / "wheels" / wheel.name)
    return folder


def zip_name(line: BlenderLine, platform: str) -> str:
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    return f"{manifest['id']}-{manifest['version']}-{line.label}-{platform.replace('-', '_')}.zip"


def build_zip(line: BlenderLine, platform: str, cache: Path, offline: bool, torch: TorchSource, output: Path) -> Path:
    """One validated zip for one Blender line and platform, named after both."""
    wheels = download_wheels(platform, line, cache, offline, torch)
    source = stage(line, platform, wheels, ROOT / "build" / "extension")
    tool = blender_ext()
    output.mkdir(parents=True, exist_ok=True)
    path = output / zip_name(line, platform)
    with tempfile.TemporaryDirectory(prefix="openlrm-build-") as built:
        command = [sys.executable, str(tool), "build", "--source-dir", str(source), "--output-dir", built]
        subprocess.run([*command, "--split-platforms"], check=True, stdout=subprocess.DEVNULL)
        shutil.move(next(Path(built).glob("*.zip")), path)
    subprocess.run([sys.executable, str(tool), "validate", str(path)], check=True, stdout=subprocess.DEVNULL)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size / 1e6:.1f} MB")
    return path


def write_listing(folder: Path) -> Path:
    """A repository listing over the zips in ``folder`` (index.json, and index.html to browse),
    written by Blender's own tool: add the folder's URL (or file://) under Get Extensions >
    Repositories and Blender offers each Blender and platform the zip made for it."""
    tool = blender_ext()
    subprocess.run([sys.executable, str(tool), "server-generate", "--repo-dir", str(folder), "--html"], check=True)
    return folder / "index.json"


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the OpenLRM Blender extension zips.")
    parser.add_argument(
        "--platform", action="append", choices=list(PLATFORMS), help="repeat for several (default: all)"
    )
    parser.add_argument(
        "--blender",
        action="append",
        choices=list(BLENDER_LINES),
        help="Blender line, repeat for several (default: 4.2 and 5.1, i.e. Blender 4.2-5.0 and 5.1 and newer)",
    )
    parser.add_argument(
        "--wheel-cache", type=Path, default=ROOT / "wheels", help="where wheels are downloaded and kept"
    )
    parser.add_argument("--offline", action="store_true", help="use only wheels already in the wheel cache")
    parser.add_argument("--torch-find-links", type=Path, help="a folder of PyTorch wheels")
    parser.add_argument(
        "--torch-index", help="a package index with PyTorch wheels, e.g. https://download.pytorch.org/whl/cpu"
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out (the add-on says how to get it)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--repository", action="store_true", help="also write a repository listing over the output folder"
    )
    args = parser.parse_args()
    torch = TorchSource(args.torch_find_links, args.torch_index, bundle=not args.no_torch)
    for name in args.blender or DEFAULT_LINES:
        for platform in args.platform or list(PLATFORMS):
            build_zip(BLENDER_LINES[name], platform, args.wheel_cache, args.offline, torch, args.output_dir)
    if args.repository:
        print(f"{write_listing(args.output_dir)}: repository listing")


if __name__ == "__main__":
    main()
