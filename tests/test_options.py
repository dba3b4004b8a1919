"""The one table of settings (``options.SETTINGS``): Options, its validation and the command
line all take their defaults and ranges from it (Blender's properties: test_blender.py)."""

from __future__ import annotations

import dataclasses

import pytest

from openlrm_blender.engine import EngineError, Options
from openlrm_blender.engine.cli import build_parser
from openlrm_blender.engine.models.registry import OPENLRM, TRIPOSR
from openlrm_blender.engine.options import SETTINGS

NUMBERS = [setting for setting in SETTINGS.values() if setting.minimum is not None]


def test_every_setting_is_an_option_with_the_tables_default():
    """A per-model setting is unset (None) until the model's family fills it in."""
    fields = {field.name: field.default for field in dataclasses.fields(Options)}
    for setting in SETTINGS.values():
        assert fields[setting.name] == (None if setting.per_model else setting.default), setting.name


def test_each_family_fills_in_only_what_the_user_left_unset():
    openlrm, triposr = Options().for_family(OPENLRM.settings), Options().for_family(TRIPOSR.settings)
    assert (openlrm.foreground_ratio, openlrm.resolution, openlrm.threshold) == (0.8, 384, 3.0)
    assert (triposr.foreground_ratio, triposr.resolution, triposr.threshold) == (0.85, 256, 25.0)
    chosen = Options(resolution=128, threshold=10.0).for_family(TRIPOSR.settings)
    assert (chosen.resolution, chosen.threshold, chosen.foreground_ratio) == (128, 10.0, 0.85)


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda setting: setting.name)
def test_each_range_is_enforced_at_both_ends(setting):
    inside = [setting.minimum, setting.maximum]
    step = 1 if isinstance(setting.default, int) else 1e-3
    for value in inside:
        value = type(setting.default)(value)
        if setting.name == "input_size":
            value -= value % 14
        Options(**{setting.name: value}).validate()
    for value in (setting.minimum - step, setting.maximum + step):
        with pytest.raises(EngineError, match=f"^{setting.name} = .* is out of range: use {setting.minimum:g} to "):
            Options(**{setting.name: type(setting.default)(value)}).validate()


def test_the_command_line_takes_the_tables_defaults_and_flags():
    parser = build_parser()
    arguments = parser.parse_args(["x.png", "-o", "x.ply"])
    for setting in SETTINGS.values():
        assert getattr(arguments, setting.name) == (None if setting.per_model else setting.default), setting.name
    flipped = parser.parse_args(["x.png", "-o", "x.ply", "--no-remove-bg", "--no-recenter", "--textured", "--dense"])
    assert (flipped.remove_background, flipped.recenter, flipped.textured, flipped.dense) == (False, False, True, True)
    old_names = parser.parse_args(["x.png", "-o", "x.ply", "--grid", "256", "--smooth", "3"])
    assert (old_names.resolution, old_names.smooth_iterations) == (256, 3)
    assert "(8 to 1024; default: the model's own, OpenLRM v1.1 384, TripoSR 256, TripoSG 512)" in " ".join(
        parser.format_help().split()
    )
    sampling = parser.parse_args(
        ["x.png", "-o", "x.ply", "--steps", "8", "--guidance", "3.5", "--seed", "7", "--tokens", "512"]
    )
    assert (sampling.steps, sampling.guidance, sampling.seed, sampling.tokens) == (8, 3.5, 7, 512)
