"""How the add-on starts its quad remesh process (``quad_remesh`` is what that process runs;
this module stays light, so enabling the add-on loads none of it)."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy


def command() -> tuple[str, ...]:
    """How to start the remesh process: this Blender in the background (factory settings,
    none of the user's add-ons), with this package's folder on its path; or, where Blender
    is a Python module, its Python with this one's path less Blender's own script folders
    (one holds a ``bpy`` folder that hides the module). The folder of the arrays follows it."""
    package = Path(__file__).resolve().parents[1]
    run = f"from {package.name}.addon.quad_remesh import main; main()"
    if bpy.app.binary_path:
        code = f"import sys; sys.path.insert(0, {str(package.parent)!r}); {run}"
        return (
            bpy.app.binary_path,
            "-b",
            "--factory-startup",
            "-noaudio",
            "--python-exit-code",
            "1",
            "--python-expr",
            code,
            "--",
        )
    scripts = Path(bpy.utils.system_resource("SCRIPTS"))
    paths = [str(package.parent), *(path for path in sys.path if not Path(path).is_relative_to(scripts))]
    return (sys.executable, "-I", "-c", f"import sys; sys.path[:] = {paths!r}; {run}")
