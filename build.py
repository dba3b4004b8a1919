"""Build the Blender extension zips, one per platform, with every dependency bundled as wheels.

    python build.py                          # linux-x64, windows-x64 and macos-arm64
    python build.py --platform linux-x64     # -> dist/openlrm_blender-<version>-linux_x64.zip
    python build.py --offline                # only wheels already in the wheel cache
    python build.py --platform linux-x64 --python 3.13 --system-torch
                                             # a Linux distribution's Blender (Debian's 4.3)

Wheels are downloaded (binary only) for CPython 3.11, the Python of blender.org's
Blender 4.2 to 5.0, into ``wheels/<platform>/``; ``--python 3.13`` builds for a Blender
on Python 3.13 (Debian's) into ``wheels/<platform>-cp313/``. NumPy is not bundled:
Blender comes with its own and the bundled packages are resolved against its version.
``--system-torch`` leaves PyTorch out, for a Blender whose Python already has one (PyPI
has no CPU-only Linux torch for 3.13, only the multi-gigabyte CUDA build); the add-on's
preferences say which PyTorch it uses. The zips are made and then validated by
Blender's own extension tool (``blender_ext.py``, shipped inside the ``bpy`` package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "openlrm_blender"
MANIFEST = ROOT / "blender_manifest.toml"
# Python version -> the NumPy that Blenders on that Python ship (not bundled; the other
# wheels are resolved against it).
BLENDER_NUMPY = {"3.11": "numpy<2", "3.13": "numpy>=2,<2.3"}

# Blender platform name -> pip platform tags, newest first.
PLATFORMS = {
    "linux-x64": [
        "manylinux_2_28_x86_64",
        "manylinux_2_27_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "linux_x86_64",  # wheels compiled locally (--find-links): PyPI hosts none
    ],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
}
# What the add-on needs at run time (the engine's requirements less NumPy). torch is
# fetched on its own without dependencies: pip judges its platform markers by this
# machine, so for Windows or macOS it would ask for Linux's CUDA packages. Its pure-Python
# dependencies are listed here instead (torch 2.13.0's Requires-Dist).
TORCH = "torch==2.13.0"
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
    "PyMCubes>=0.1.4",
    "onnxruntime>=1.18",
]
# Dependencies behind platform markers that pip, judging markers by this machine, would miss.
PLATFORM_REQUIREMENTS = {"windows-x64": ["colorama"]}  # tqdm and click use it on Windows
# Packages Blender ships itself: bundling another version of these would clash.
PROVIDED_BY_BLENDER = {"numpy"}


def wheel_name(path: Path) -> str:
    return re.sub(r"[-_.]+", "_", path.name.split("-")[0]).lower()


def download_wheels(
    platform: str,
    python: str,
    cache: Path,
    offline: bool,
    torch_index: str | None,
    system_torch: bool,
    find_links: Path | None = None,
) -> list[Path]:
    """Binary wheels of the requirements and everything they need, for one platform."""
    abi = "cp" + python.replace(".", "")
    folder = cache / (platform if python == "3.11" else f"{platform}-{abi}")
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
    command += ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi]
    command += ["--dest", str(folder)]
    for tag in PLATFORMS[platform]:
        command += ["--platform", tag]
    if find_links:
        command += ["--find-links", str(find_links)]
    if offline:
        command += ["--no-index", "--find-links", str(folder)]
    elif torch_index:
        command += ["--extra-index-url", torch_index]
    requirements = [BLENDER_NUMPY[python], *REQUIREMENTS, *PLATFORM_REQUIREMENTS.get(platform, [])]
    if not system_torch:
        subprocess.run([*command, "--no-deps", TORCH], check=True)
        requirements += TORCH_REQUIREMENTS
    subprocess.run([*command, *requirements], check=True)
    provided = PROVIDED_BY_BLENDER | ({"torch"} if system_torch else set())  # the cache may hold an earlier torch
    return [wheel for wheel in sorted(folder.glob("*.whl")) if wheel_name(wheel) not in provided]


def manifest_with_wheels(wheels: dict[str, list[Path]]) -> str:
    """The repository's manifest with its ``platforms`` and ``wheels`` lists set to these."""
    text = MANIFEST.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^platforms = \[.*?\]\n", "", text)
    text = re.sub(r"(?ms)^wheels = \[.*?\]\n", "", text)
    paths = sorted({f"./wheels/{wheel.name}" for platform_wheels in wheels.values() for wheel in platform_wheels})
    listing = "platforms = [{}]\nwheels = [\n{}]\n".format(
        ", ".join(f'"{platform}"' for platform in wheels), "".join(f'  "{path}",\n' for path in paths)
    )
    return text.replace("\n[permissions]", f"\n{listing}\n[permissions]", 1)


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


def stage(wheels: dict[str, list[Path]], folder: Path) -> Path:
    """The extension's source as Blender's builder wants it: package, manifest, wheels."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(PACKAGE, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / "blender_manifest.toml").write_text(manifest_with_wheels(wheels), encoding="utf-8")
    (folder / "wheels").mkdir()
    for platform_wheels in wheels.values():
        for wheel in platform_wheels:
            shutil.copy(wheel, folder / "wheels" / wheel.name)
    return folder


def build(
    platforms: list[str],
    cache: Path,
    offline: bool,
    torch_index: str | None,
    output: Path,
    python: str = "3.11",
    system_torch: bool = False,
    find_links: Path | None = None,
) -> list[Path]:
    wheels = {
        platform: download_wheels(platform, python, cache, offline, torch_index, system_torch, find_links)
        for platform in platforms
    }
    source = stage(wheels, ROOT / "build" / "extension")
    tool = blender_ext()
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(tool), "build", "--source-dir", str(source), "--output-dir", str(output), "--split-platforms"],
        check=True,
    )
    manifest = tomllib.loads((source / "blender_manifest.toml").read_text(encoding="utf-8"))
    zips = [output / f"{manifest['id']}-{manifest['version']}-{platform.replace('-', '_')}.zip" for platform in platforms]
    for path in zips:
        subprocess.run([sys.executable, str(tool), "validate", str(path)], check=True)
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size / 1e6:.1f} MB")
    return zips


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the OpenLRM Blender extension zips.")
    parser.add_argument("--platform", action="append", choices=list(PLATFORMS), help="repeat for several (default: all)")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / "wheels", help="where wheels are downloaded and kept")
    parser.add_argument("--offline", action="store_true", help="use only wheels already in the wheel cache")
    parser.add_argument(
        "--torch-index",
        help="extra package index for torch (for example PyTorch's CPU index); on this project's Linux "
        "machines pip already finds the CPU-only torch 2.13.0 wheel on local disk",
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--python", choices=list(BLENDER_NUMPY), default="3.11", help="the Python of the Blender to build for"
    )
    parser.add_argument(
        "--system-torch", action="store_true", help="leave PyTorch out: the Blender's Python already has one"
    )
    parser.add_argument(
        "--find-links",
        type=Path,
        help="a folder of extra wheels, for packages PyPI has no binary of for this Python (PyMCubes on 3.13)",
    )
    args = parser.parse_args()
    build(
        args.platform or list(PLATFORMS),
        args.wheel_cache,
        args.offline,
        args.torch_index,
        args.output_dir,
        args.python,
        args.system_torch,
        args.find_links,
    )


if __name__ == "__main__":
    main()
