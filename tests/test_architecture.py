"""The package's shape, read from its import statements: the layers only import downwards
(Blender glue > jobs > worker > engine; in the engine, assembly > the stages in the order the
data flows through them > foundation), no import circle, ``bpy`` only in the Blender glue, and
no module too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "openlrm_blender"
MAX_LINES = 400
MAX_ENGINE_TOP_LEVEL = 12

# The lowest layer first; a module may import its own layer and those below it.
LAYERS = (
    ("engine foundation", ("engine.errors", "engine.progress", "engine.result", "engine.pytorch", "engine.camera")),
    # The stages, in the order the data flows: image -> tensors -> model -> field -> mesh ->
    # surface -> file. A stage may use an earlier one, never a later one.
    ("engine input", ("engine.input",)),
    ("engine models", ("engine.models",)),
    ("engine geometry", ("engine.geometry",)),
    ("engine surface", ("engine.surface",)),
    ("engine export", ("engine.export",)),
    ("engine assembly", ("engine",)),  # options, runtime, pipeline, cli and the package itself
    ("worker", ("worker",)),
    ("jobs", ("jobs",)),
    ("Blender glue", ("addon", "")),  # "": the package's own register()
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer whose longest prefix names the module."""
    best, rank = -1, None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".") or prefix == "") and len(prefix) > best:
                best, rank = len(prefix), index
    return rank


def imports_of(module: str) -> set[str]:
    """The package's modules that ``module`` imports, at any depth of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if child in MODULES else target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.startswith("openlrm_blender."):
                    found.add(name.removeprefix("openlrm_blender."))
    return found - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_import_goes_down_or_sideways():
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    """Depth-first search for a back edge; the circle found is named."""
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                return [*trail[trail.index(target) :], module, target] if target in trail else [module, target]
            if target not in state and (circle := visit(target, [*trail, module])):
                return circle
        state[module] = "done"
        return None

    for module in sorted(GRAPH):
        if module not in state:
            circle = visit(module, [])
            assert circle is None, " -> ".join(circle)


def test_only_the_blender_glue_imports_bpy():
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        names |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        if "bpy" in names:
            assert module == "" or module.startswith("addon"), f"{module} imports bpy"


def test_modules_stay_short_and_the_engine_has_rooms():
    long = {module: n for module, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
    top_level = list((PACKAGE / "engine").glob("*.py"))
    assert len(top_level) <= MAX_ENGINE_TOP_LEVEL, sorted(path.name for path in top_level)
    for room in ("models/openlrm", "input", "geometry", "surface", "export"):
        assert (PACKAGE / "engine" / room / "__init__.py").is_file(), room


def test_the_checks_see_what_they_should():
    """The graph is read right: known edges are in it, and a layer is known for every module."""
    assert (
        "engine.models.registry" in GRAPH["engine.runtime"]
        and "engine.models.field" in GRAPH["engine.geometry.extraction"]
    )
    assert "worker.protocol" in GRAPH["worker.client"] and "engine.errors" in GRAPH["worker.client"]
    assert "addon.state" in GRAPH["addon.panel"] and "jobs.pytorch_install" in GRAPH["addon.preferences"]
    assert all(layer_of(module) is not None for module in MODULES)


def test_an_arrow_back_up_the_stages_is_caught():
    """A model recipe that took its camera from the photo stage (the arrow this test first
    missed) runs against the flow: the layer check names such an arrow."""
    assert layer_of("engine.surface.photo") > layer_of("engine.models.openlrm.recipe")
    assert layer_of("engine.camera") < layer_of("engine.models.openlrm.recipe") < layer_of("engine.surface.photo")
    assert layer_of("engine.input.prepare") < layer_of("engine.models.triposr.image")
