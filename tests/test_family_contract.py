"""Every registered family against the family contract (``engine.models.recipe``): its recipe
is a ``Recipe`` with every method of the contract under the contract's parameters, it names
only settings of the one table, and run on its tiny vector with only the settings it names,
it gives what its registry entry promises (a field or a cube grid, colours or none, a camera
or none)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from openlrm_blender.engine.input.read import read_rgba
from openlrm_blender.engine.models.cube_grid import CubeGrid
from openlrm_blender.engine.models.field import Field
from openlrm_blender.engine.models.recipe import ModelOutput, Prepared, Recipe
from openlrm_blender.engine.models.registry import FAMILIES, family_of_folder
from openlrm_blender.engine.models.settings import Settings
from openlrm_blender.engine.options import SETTINGS, Options
from openlrm_blender.engine.progress import STAGES, Reporter
from openlrm_blender.engine.runtime import get_model

from .conftest import SHARED, TINY_SIZE

VECTORS = {"openlrm": "tiny", "triposr": "triposr-tiny", "triposg": "triposg-tiny", "trellis": "trellis-tiny"}
OVERRIDES = {"openlrm": {"input_size": TINY_SIZE}}  # the tiny width has no published input size
CONTRACT = [name for name, member in vars(Recipe).items() if inspect.isfunction(member) and not name.startswith("_")]


def test_every_family_has_a_vector_here():
    assert {family.name for family in FAMILIES} <= set(VECTORS)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_the_recipe_keeps_the_contract(family):
    recipe = family.recipe()
    assert isinstance(recipe, Recipe) and recipe.rounding in ("floor", "round")
    for name in CONTRACT:
        theirs = inspect.signature(getattr(Recipe, name)).parameters
        ours = inspect.signature(getattr(type(recipe), name)).parameters
        if isinstance(inspect.getattr_static(type(recipe), name), staticmethod):  # a module's function, no self
            theirs = dict(list(theirs.items())[1:])
        # The same parameters in the same order (a family may name the keyword bag its own way).
        positional = [p for p in theirs.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        assert list(ours)[: len(positional)] == [p.name for p in positional], f"{family.name}.{name}"
    assert family.paints == (type(recipe).paint is not Recipe.paint), family.name


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_a_family_names_only_settings_of_the_table(family):
    assert set(family.uses) <= set(SETTINGS), set(family.uses) - set(SETTINGS)
    assert len(set(family.uses)) == len(family.uses)
    published = set(family.settings)
    assert published <= set(family.uses) and all(SETTINGS[name].per_model for name in published), published


def test_a_setting_not_named_is_refused():
    settings = Settings("TripoSG", {"steps": 3})
    assert settings.steps == 3 and "steps" in settings and "recenter" not in settings
    with pytest.raises(AttributeError, match="TripoSG does not use the setting 'recenter'"):
        _ = settings.recenter


def test_the_options_give_a_family_its_own_settings_only():
    for family in FAMILIES:
        assert set(Options().settings_for(family).names()) == set(family.uses)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.name)
def test_a_run_on_the_tiny_vector_gives_what_the_family_promises(family):
    """Only the settings it names: a recipe reading another fails here with its name."""
    folder = SHARED / "vectors" / VECTORS[family.name]
    assert family_of_folder(folder) is family
    recipe = family.recipe()
    options = Options(weights_dir=folder, steps=2, device="cpu", dtype="float32", **OVERRIDES.get(family.name, {}))
    options = options.for_family(family.settings | recipe.published_settings(folder))
    settings = options.settings_for(family)
    model = get_model(recipe.check_model_dir(folder), torch.device("cpu"), "float32")
    cut = recipe.cut_out(read_rgba(Path(folder) / "input.png"), None)
    prepared = recipe.prepare(model, [cut], settings, canvas=True)
    assert isinstance(prepared, Prepared) and prepared.pixels.dtype == torch.float32
    assert prepared.pixels.ndim == 4 and prepared.pixels.shape[:2] == (1, 3)
    assert prepared.canvas.ndim == 3 and prepared.canvas.shape[2] == 4
    reports = []
    made = recipe.make(model, prepared, settings, Reporter(lambda *report: reports.append(report)))
    assert isinstance(made, ModelOutput) and isinstance(made.surface, Field | CubeGrid)
    assert (made.colours is not None) == family.makes_colours
    stages = [stage for stage, _, _ in reports]
    assert set(stages) <= set(STAGES) and ("sample" in stages) == family.sampled
    assert [stage for stage in STAGES if stage in stages] == list(dict.fromkeys(stages))  # in the run's order
