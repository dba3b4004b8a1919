"""The extension zips as users get them: build.py's zips for every platform and Blender
line, the one for the running Blender installed through the extension manager in a Python
that sees only Blender (it must run on its bundled wheels alone), the repository listing
followed as a user follows it, and the version ranges checked by Blender's own filter."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from openlrm_blender.jobs.windows_paths import LONGEST_PATH, TORCH_DEPTH, deepest, windows_length, written_paths
from tests.conftest import REPO, SHARED

pytest.importorskip("bpy", reason="Blender as a Python module runs the extension manager")

# What Blender as a module needs from its own environment (Blender ships these itself).
BLENDER_OWN = (
    "bpy",
    "numpy",
    "numpy.libs",
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset_normalizer",
    "zstandard",
    "cattrs",
    "attrs",
    "typing_extensions.py",
)
BLENDER = tuple(int(part) for part in importlib.metadata.version("bpy").split(".")[:3])
LINE = "blender5.1-and-newer" if BLENDER >= (5, 1, 0) else "blender4.2-5.0"
PLATFORMS = ("linux_x64", "windows_x64", "macos_arm64")
# Blender releases and their Python: each must be offered exactly one zip per platform.
RELEASES = {(4, 2, 0): (3, 11), (5, 0, 1): (3, 11), (5, 1, 0): (3, 13), (5, 2, 3): (3, 13), (5, 3, 0): (3, 13)}


def build(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "build.py", *arguments]
    done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def dist() -> Path:
    """Every zip (3 platforms x 2 Blender lines) and the repository listing over them."""
    folder = REPO / "build" / "test-dist"
    shutil.rmtree(folder, ignore_errors=True)
    done = build("--repository", "--output-dir", str(folder))
    for line in ("blender4.2-5.0", "blender5.1-and-newer"):
        for platform in PLATFORMS:
            assert f"openlrm_blender-0.1.0-{line}-{platform}.zip: " in done.stdout  # the size line
    assert "linux-x64, Blender 5.1.0+ (Python 3.13): built without PyTorch" in done.stdout
    return folder


def wheels_of(path: Path) -> list[str]:
    return [Path(name).name for name in zipfile.ZipFile(path).namelist() if name.endswith(".whl")]


def blender_only_python(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """This Python with only Blender and what Blender ships on its path (-S, no site-packages)."""
    site = tmp_path / "blender-site"
    site.mkdir()
    packages = Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).parent
    for name in BLENDER_OWN:
        if (packages / name).exists():
            (site / name).symlink_to(packages / name)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"), PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    return [sys.executable, "-S"], env


def run_script(tmp_path: Path, script: str, *arguments: str) -> dict:
    python, env = blender_only_python(tmp_path)
    command = [*python, str(REPO / "tests" / "blender_scripts" / script), *arguments]
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[0][len("RESULT ") :]) | {"output_tail": (done.stdout + done.stderr)[-3000:]}


def test_each_zip_holds_only_wheels_its_blender_can_load(dist):
    for platform in PLATFORMS:
        for line, abi in (("blender4.2-5.0", "cp311"), ("blender5.1-and-newer", "cp313")):
            path = dist / f"openlrm_blender-0.1.0-{line}-{platform}.zip"
            wheels = wheels_of(path)
            native = [name for name in wheels if not name.endswith("-none-any.whl")]
            # textured output, background removal, TripoSR's config.yaml
            for package in ("xatlas-", "fast_simplification-", "onnxruntime-", "pyyaml-"):
                assert any(name.lower().startswith(package) for name in wheels), (path.name, package)
            assert native and all(f"-{abi}-" in name or "-abi3-" in name for name in native), native
            other_platforms = {"linux_x64": "linux", "windows_x64": "win_amd64", "macos_arm64": "macosx"}
            other_platforms.pop(platform)
            assert not any(tag in name for name in wheels for tag in other_platforms.values())
            # NumPy is Blender's own; PyMCubes (and the SciPy it pulls) is no longer needed; Ray is the farm's.
            assert not any(name.startswith(("numpy-", "pymcubes-", "scipy-", "ray-")) for name in wheels)
            assert not (platform != "windows_x64" and any(name.startswith("colorama-") for name in wheels))
            has_torch = any(name.startswith("torch-") for name in wheels)
            assert has_torch == (line == "blender4.2-5.0" or platform != "linux_x64"), (path.name, has_torch)
            assert any(name.startswith("sympy-") for name in wheels) == has_torch  # torch's own dependencies
            names = zipfile.ZipFile(path).namelist()
            assert {"blender_manifest.toml", "__init__.py", "engine/geometry/marching_cubes.py"} <= set(names)
            assert {"addon/panel.py", "jobs/job.py", "worker/server.py", "engine/models/openlrm/model.py"} <= set(names)
            # No test code ships: no test module, fixture or stand-in model.
            test_code = re.compile(r"(^|/)(tests?|support)/|(^|/)(conftest|test_\w+|fake_engines?|random_models?)\.py$")
            assert not [name for name in names if test_code.search(name)], path.name


# Where Blender for Windows puts an extension and its wheels, for a user name of 20
# characters: each Blender line's newest version folder (all are three characters).
WINDOWS_USER = "u" * 20
WINDOWS_BLENDER = rf"C:\Users\{WINDOWS_USER}\AppData\Roaming\Blender Foundation\Blender\{{version}}"
WINDOWS_TEMP = rf"C:\Users\{WINDOWS_USER}\AppData\Local\Temp"
WINDOWS_LINES = {"blender4.2-5.0": ("5.0", "3.11"), "blender5.1-and-newer": ("5.3", "3.13")}


def paths_over_the_limit(folder: str, names, pyc_tag: str) -> list[str]:
    return [name for name in written_paths(names, pyc_tag) if windows_length(folder, name) > LONGEST_PATH]


def test_every_file_of_the_windows_zips_fits_windows_path_limit(dist, tmp_path):
    """The extension's own files below user_default\\openlrm_blender and every bundled wheel's
    below .local\\lib\\python3.X\\site-packages, where Blender unpacks them."""
    for line, (version, python) in WINDOWS_LINES.items():
        blender = WINDOWS_BLENDER.format(version=version)
        site = rf"{blender}\extensions\.local\lib\python{python}\site-packages"
        tag = f"cpython-{python.replace('.', '')}"
        with zipfile.ZipFile(dist / f"openlrm_blender-0.1.0-{line}-windows_x64.zip") as archive:
            names = archive.namelist()
            assert not paths_over_the_limit(rf"{blender}\extensions\user_default\openlrm_blender", names, tag)
            for name in (name for name in names if name.endswith(".whl")):
                wheel = Path(archive.extract(name, tmp_path))
                longest = deepest(wheel, tag)
                print(f"{line} {wheel.name}: deepest {len(longest)} characters, {windows_length(site, longest)} in all")
                assert windows_length(site, longest) <= LONGEST_PATH, (wheel.name, longest)
                if wheel.name.startswith("torch-"):
                    assert len(longest) <= TORCH_DEPTH  # the installer's check before it downloads assumes this
                wheel.unlink()


def test_the_pytorch_installer_writes_within_windows_path_limit(dist, tmp_path):
    """Every folder the installer has pip write to, below the extension's user folder and the
    temporary folder, with the Windows PyTorch wheel's deepest file (the CPU build; the CUDA
    builds, from PyTorch's own index that is out of reach here, carry the same licence tree)."""
    from openlrm_blender.jobs.pytorch_install import INSTALLED, PREVIOUS, STAGING

    with zipfile.ZipFile(dist / "openlrm_blender-0.1.0-blender4.2-5.0-windows_x64.zip") as archive:
        torch_wheel = next(name for name in archive.namelist() if Path(name).name.startswith("torch-"))
        longest = deepest(Path(archive.extract(torch_wheel, tmp_path)), "cpython-311")
    root = rf"{WINDOWS_BLENDER.format(version='5.0')}\extensions\.user\user_default\openlrm_blender"
    pip_target = rf"{WINDOWS_TEMP}\openlrm-pip-xxxxxxxx\pip-target-xxxxxxxx\lib\python"
    for folder in (rf"{root}\{INSTALLED}", rf"{root}\{STAGING}", rf"{root}\{PREVIOUS}", pip_target):
        print(f"{folder}: {windows_length(folder, longest)} characters at the deepest")
        assert windows_length(folder, longest) <= LONGEST_PATH, folder


def test_the_manifest_credits_every_bundled_wheel_and_names_every_download(dist):
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text(encoding="utf-8"))
    credited = {
        re.sub(r"[-_.]+", "_", name).lower() for line in manifest["copyright"] for name in re.findall(r"[\w.-]+", line)
    }
    for path in dist.glob("*.zip"):
        for wheel in wheels_of(path):
            project = wheel.split("-")[0].lower()
            assert project in credited, f"{wheel} (in {path.name}) is not credited in the manifest's copyright"
    network = manifest["permissions"]["network"].lower()
    assert all(download in network for download in ("weights", "background removal models", "pytorch")), network


def test_exactly_one_zip_for_each_blender_and_platform(dist):
    """Blender's own listing filter (from its extension tool) over the generated index.json."""
    tool = next(
        Path(importlib.util.find_spec("bpy").submodule_search_locations[0]).glob(
            "*/scripts/addons_core/bl_pkg/cli/blender_ext.py"
        )
    )
    spec = importlib.util.spec_from_file_location("blender_ext", tool)
    blender_ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blender_ext)
    listing = json.loads((dist / "index.json").read_text(encoding="utf-8"))["data"]
    assert len(listing) == 6

    def offered(version, platform, python) -> list[str]:
        return [
            item["archive_url"]
            for item in listing
            if not blender_ext.repository_filter_skip(
                item,
                filter_blender_version=version,
                filter_platform=platform,
                filter_python_version=python,
                skip_message_fn=None,
                error_fn=lambda error: pytest.fail(str(error)),
            )
        ]

    for version, python in RELEASES.items():
        for platform in ("linux-x64", "windows-x64", "macos-arm64"):
            zips = offered(version, platform, (*python, 0))
            assert len(zips) == 1, (version, platform, zips)
            assert ("5.1-and-newer" in zips[0]) == (version >= (5, 1, 0)) and platform.replace("-", "_") in zips[0]
            # The version ranges alone already choose: no Blender is offered a zip for another Python.
            assert offered(version, platform, (0, 0, 0)) == zips


TRELLIS = SHARED / "vectors" / "trellis-tiny"


def command_line_painting(tmp_path: Path) -> np.ndarray:
    """The painting vector's mesh painted by the command line: its 8-bit colours as 0..1."""
    from plyfile import PlyData

    output = tmp_path / "painted-by-the-command-line.ply"
    command = [sys.executable, "-m", "openlrm_blender.engine", str(TRELLIS / "input.png"), "-o", str(output),
               "--weights", str(TRELLIS), "--seed", "1234", "--no-photo-texture",
               "--paint", str(TRELLIS / "paint.ply")]  # fmt: skip
    done = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    vertex = PlyData.read(str(output))["vertex"]
    return np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1) / 255.0


def test_install_enable_generate_uninstall(dist, tiny_dir, tmp_path):
    """The zip for this Blender: it enables, and Generate runs the model, or (no PyTorch in
    the Linux 5.1+ zip) fails with the way to get PyTorch and leaves the scene as it was."""
    painted = tmp_path / "painted.npy"
    zip_path = dist / f"openlrm_blender-0.1.0-{LINE}-linux_x64.zip"
    report = run_script(tmp_path, "install_check.py", str(zip_path), str(tiny_dir), str(TRELLIS), str(painted))
    assert report["blender"][:2] == list(BLENDER[:2]) and report["install"] == ["FINISHED"]
    assert report["enabled"] and all(report["registered"].values()), report
    installed = str(tmp_path / "user" / "extensions")
    assert report["modules"]["mcubes"] is None and report["modules"]["scipy"] is None
    for name in ("safetensors", "onnxruntime", "huggingface_hub", "PIL"):
        assert report["modules"][name].startswith(installed), (name, report["modules"][name])
    # The zip's remesh process makes quads (#27), and on the line with PyTorch Generate does.
    assert report["quads"]["quad_share"] >= 0.95 and abs(report["quads"]["faces"] - 2000) <= 500, report["quads"]
    if LINE == "blender4.2-5.0":
        assert report["modules"]["torch"].startswith(installed)
        assert report["operator"] == ["FINISHED"]
        assert report["object"] == {"name": "input", "vertices": 13616, "faces": 25412}
        assert report["quad_operator"] == ["FINISHED"], report
        quad_object = report["quad_object"]
        quads_made = quad_object["quads"] >= 0.95 * quad_object["faces"] and abs(quad_object["faces"] - 2000) <= 500
        assert quads_made, (quad_object, report["output_tail"])  # Blender's output says why the triangles stayed
        # Paint from Photo through the zip on Blender's own import of the painting vector's mesh: its
        # points unchanged, their sRGB colours within 2/255 of the command line's painting.
        assert report["paint"] == ["FINISHED"], report["output_tail"]
        assert report["paint_object"]["positions_unchanged"] and report["paint_object"]["attribute"][0] == "POINT"
        assert report["paint_object"]["vertices"] == 4166 and report["paint_object"]["faces"] == 8328
        assert np.abs(np.load(painted) - command_line_painting(tmp_path)).max() <= 2 / 255 + 1e-6
    else:
        assert report["modules"]["torch"] is None
        assert report["operator"] == ["ERROR"] and report["scene_unchanged"]
        assert "PyTorch is missing" in report["error"] and "pip install torch --index-url" in report["error"]
        assert "Traceback" not in report["error"]
    assert report["uninstall"] == ["FINISHED"]
    assert not any(report["left_registered"].values()), report["left_registered"]
    assert not list((tmp_path / "user" / "extensions" / "user_default").glob("openlrm*"))


def test_the_repository_listing_gives_this_blender_its_zip(dist, tmp_path):
    report = run_script(tmp_path, "listing_check.py", str(dist))
    assert report["add"] == report["sync"] == report["install"] == ["FINISHED"], report
    expected = {"blender4.2-5.0": ("4.2.0", "5.1.0"), "blender5.1-and-newer": ("5.1.0", None)}[LINE]
    assert (report["manifest"]["blender_version_min"], report["manifest"]["blender_version_max"]) == expected
    assert report["manifest"]["platforms"] == ["linux-x64"]
    abi = f"cp{report['python'][0]}{report['python'][1]}"
    assert any(f"-{abi}-" in name for name in report["wheels"]), report["wheels"]
    assert report["enabled"] and report["operator"]


def test_torch_from_a_given_folder_is_bundled_for_linux_on_python_3_13(tmp_path):
    """A release machine with PyTorch's CPU wheels (downloaded from its own index) hands them
    over with --torch-find-links; here a stand-in wheel shows that it is taken and bundled."""
    wheels = tmp_path / "torch-wheels"
    wheels.mkdir()
    name = "torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_x86_64.whl"
    info = "torch-2.13.0+cpu.dist-info"
    with zipfile.ZipFile(wheels / name, "w") as wheel:
        wheel.writestr("torch/__init__.py", "__version__ = '2.13.0+cpu'\n")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0+cpu\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp313-cp313-manylinux_2_28_x86_64\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    output = tmp_path / "dist"
    done = build(
        "--blender", "5.1", "--platform", "linux-x64", "--torch-find-links", str(wheels), "--output-dir", str(output)
    )
    assert "built without PyTorch" not in done.stdout
    bundled = wheels_of(output / "openlrm_blender-0.1.0-blender5.1-and-newer-linux_x64.zip")
    assert name in bundled and any(wheel.startswith("sympy-") for wheel in bundled)


@pytest.mark.skipif(BLENDER >= (5, 1, 0), reason="PyPI's torch for Python 3.13 on Linux is the CUDA build (GBs)")
def test_install_pytorch_from_the_preferences_into_a_zip_without_it(tiny_dir, tmp_path, torch_index):
    """Real pip from a local index: the add-on's operator installs a CPU PyTorch; a new Blender
    process then runs the model on it (the worker imports it from the add-on's folder); removing
    it goes back to no PyTorch."""
    output = tmp_path / "dist"
    build("--blender", "4.2", "--platform", "linux-x64", "--no-torch", "--output-dir", str(output))
    zip_path = output / "openlrm_blender-0.1.0-blender4.2-5.0-linux_x64.zip"
    report = run_script(tmp_path, "torch_install_check.py", str(zip_path), str(tiny_dir), torch_index)
    assert report["before"] == "PyTorch: not installed"
    assert "Online access is off" in report["offline"]
    assert report["install"] == ["FINISHED"], report
    root = report["root"]
    assert root.startswith(str(tmp_path / "user" / "extensions" / ".user")), root
    assert report["after"].startswith("PyTorch 2.13.0") and report["after"].endswith("(installed by the add-on)")
    assert "RESULT ['FINISHED']" in report["new_blender"], report["new_blender"]
    loaded = next(line for line in report["new_blender"] if "Loading PyTorch: PyTorch 2.13.0" in line)
    assert f" from {root}/torch/torch" in loaded, loaded  # the worker's own torch.__file__
    assert report["remove"] == ["FINISHED"] and report["removed"] == "PyTorch: not installed"
    assert not {"torch", "torch.json", "next", "old"} & set(report["root_left"]), report["root_left"]
    assert any(line.startswith("RESULT ['ERROR'] PyTorch is missing") for line in report["after_remove"])
