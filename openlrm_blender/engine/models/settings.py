"""The run's settings one model family reads: no PyTorch here (the options table and Blender's
process make them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class Settings:
    """The run's settings a family uses, read as attributes; any other name is an error (a
    recipe reading a setting its family does not declare is a bug the tests catch)."""

    def __init__(self, family: str, values: Mapping[str, object]) -> None:
        self._family = family
        self._values = dict(values)

    def __getattr__(self, name: str) -> object:
        values = self.__dict__.get("_values", {})
        if name not in values:
            raise AttributeError(f"{self.__dict__.get('_family')} does not use the setting {name!r}")
        return values[name]

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> Iterable[str]:
        return self._values.keys()
