"""Reading the JSON configuration files published models come with (Hugging Face's
``config.json``, diffusers' component files): the file as a dict, and a dataclass of the
numbers a network is built from, each checked against its field's type, so a bad file gets
one sentence naming it instead of an error deep inside a layer."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TypeVar

from ..errors import WeightsError

Config = TypeVar("Config")


def read_json(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return raw


def dataclass_from(cls: type[Config], raw: dict, path: Path, required: tuple[str, ...] = ()) -> Config:
    """The dataclass from ``raw``: every ``required`` key there, each value of its field's type
    (keys the dataclass has no field for are left alone: the files hold more than we build from)."""
    missing = [key for key in required if key not in raw]
    if missing:
        raise WeightsError(f"{path}: missing {', '.join(missing)}")
    values = {}
    for field in fields(cls):
        if field.name not in raw:
            continue
        default = field.default_factory() if field.default is MISSING else field.default
        value, kind = raw[field.name], type(default)
        if kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[field.name] = kind(value)
        elif isinstance(value, kind):
            values[field.name] = value
        else:
            raise WeightsError(f"{path}: {field.name} = {value!r} is not a {kind.__name__}")
    return cls(**values)
