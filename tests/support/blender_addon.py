"""The add-on enabled in Blender as a Python module, for the tests that drive it: a
fixture, registered in tests/conftest.py (``bpy`` must be importable where it is used)."""

from __future__ import annotations

import pytest

ADDON = "openlrm_blender"


@pytest.fixture(scope="module")
def addon():
    """The add-on enabled on factory settings; its Generate operators' module."""
    import bpy

    import addon_utils  # ships with bpy, on the path once bpy is imported

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable(ADDON, default_set=True, handle_error=None)
    from openlrm_blender.addon.operators import generate as operators

    yield operators
    addon_utils.disable(ADDON, default_set=True)
