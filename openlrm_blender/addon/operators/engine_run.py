"""What Generate and Paint from Photo share: their settings read from the caller, else the
sidebar, else the preferences; the photos they take; and the run itself, synchronous when
headless or called from a script, else looked at on a timer and ended by one undo step."""

from __future__ import annotations

from pathlib import Path

import bpy

from ...engine import EngineError, Options
from ...engine.errors import kind_of
from ...engine.input.read import ImageSource
from ...engine.models.registry import Family
from ...engine.options import SETTINGS
from ...jobs.job import Status
from .. import ticker
from ..blender_image import image_pixels
from ..lifecycle import stop_running_job
from ..preferences import get_preferences, torch_in_use
from ..run import Outcome, Steps
from ..state import Runtime


class EngineRunOperator:
    """An operator whose work is engine runs in the worker (``Steps``): ``_start`` makes them."""

    undo_label = ""  # the undo step's name, before what the run made or changed

    def _start(self, context: bpy.types.Context, listener=None) -> Steps | None:
        raise NotImplementedError

    def _value(self, name: str, fallback):
        """The operator's property when the caller set it, else the panel's or preferences' value."""
        return getattr(self, name) if self.properties.is_property_set(name) else fallback

    def _check_ranges(self) -> None:
        """Each setting the caller gave within its valid range, before anything else is looked at."""
        for name, setting in SETTINGS.items():
            if hasattr(self.properties, name) and self.properties.is_property_set(name):
                setting.check(getattr(self, name))

    def _chosen_images(self, context: bpy.types.Context) -> list[tuple[ImageSource, str]]:
        """Each photo and its name: the caller's image datablock or file, else the sidebar's
        image, its ticked images or its file."""
        settings = context.scene.openlrm
        if self.properties.is_property_set("image_name"):
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise EngineError(f"there is no image named '{self.image_name}' in this file")
            images = [image]
        elif self.properties.is_property_set("filepath") or settings.source == "FILE":
            images = []
        elif settings.source == "IMAGES":
            images = [image for image in bpy.data.images if image.openlrm_chosen]
            if not images:
                raise EngineError("tick the images to convert in the sidebar's list first")
        else:
            if settings.image is None:
                raise EngineError("choose an image first")
            images = [settings.image]
        if images:
            return [(image_pixels(image), Path(image.name).stem or "OpenLRM") for image in images]
        filepath = self._value("filepath", settings.filepath)
        if not filepath:
            raise EngineError("choose an image file first")
        source = Path(bpy.path.abspath(filepath))
        return [(source, source.stem or "OpenLRM")]

    def _options(self, context: bpy.types.Context, model: str, weights_dir: str, family: Family | None) -> Options:
        """The options every run takes: where the model comes from and runs, the background
        removal, the seed, and each per-model number: the caller's, else the sidebar's where
        they were set for this family and the caller named no model folder, else (None) the
        model's published value."""
        settings = context.scene.openlrm
        prefs = get_preferences(context)
        options = Options(
            model=model,
            weights_dir=Path(weights_dir) if weights_dir else None,
            token=prefs.hub_token or None,
            offline=None if bpy.app.online_access else True,  # Blender's "Allow Online Access"
            cache_dir=Path(bpy.path.abspath(prefs.cache_dir)) if prefs.cache_dir else None,
            device=self._value("device", prefs.device),
            dtype=prefs.precision,
            remove_background=self._value("remove_background", settings.remove_background),
            background_model=prefs.background_choice(),
            seed=self._value("seed", settings.seed),
            view_mode=self._value("view_mode", settings.view_mode),
        )
        sidebar_fits = (
            family is not None
            and settings.settings_family == family.name
            and not self.properties.is_property_set("weights_dir")
        )
        for key, setting in SETTINGS.items():
            if setting.per_model:
                sidebar = getattr(settings, key) if sidebar_fits else None
                setattr(options, key, self._value(key, sidebar) if hasattr(self.properties, key) else sidebar)
        return options

    def _refused(self, error: EngineError) -> None:
        """Bad input, before anything ran: said in the report and the sidebar."""
        Runtime.last_error, Runtime.last_error_kind = str(error), kind_of(error)
        self.report({"ERROR"}, str(error))

    def _report_outcome(self, outcome: Outcome) -> set[str]:
        result, level, message = outcome
        self.report({level}, message)
        return result

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Synchronous run (headless, or called from a script): prints progress."""
        printed = set()

        def print_progress(status: Status) -> None:
            line = f"{status.fraction:4.0%} {status.label}"
            if line not in printed:
                printed.add(line)
                print(f"OpenLRM: {line}", flush=True)

        if Runtime.job is not None:
            self.report({"WARNING"}, "OpenLRM is already running: wait for it or cancel it")
            return {"CANCELLED"}
        run = self._start(context, listener=print_progress)
        if run is None:
            return {"CANCELLED"}
        print(f"OpenLRM: {torch_in_use()}", flush=True)
        return self._report_outcome(run.run_all(context))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """The interactive run: started here, looked at on a timer (``ticker``), so the
        operator is done at once and Blender never holds a handler of ours."""
        if bpy.app.background:
            return self.execute(context)
        if Runtime.job is not None:
            self.report({"WARNING"}, "OpenLRM is already running: wait for it or cancel it")
            return {"CANCELLED"}
        run = self._start(context)
        if run is None:
            return {"CANCELLED"}
        run.job.start()
        Runtime.ticker = ticker.every_tick(timer_step(run, self.undo_label), context.window, failed=stop_running_job)
        return {"FINISHED"}


def timer_step(run: Steps, label: str):
    """The interactive run's timer step (``ticker.every_tick``): True once the run has ended,
    with one undo step, named ``label``, for all it made or changed, and its report."""

    def step(context: bpy.types.Context) -> bool:
        outcome = run.tick(context)
        if outcome is None:
            return False
        Runtime.ticker = None
        result, level, message = outcome
        if "FINISHED" in result:
            bpy.ops.ed.undo_push(message=f"{label}: {message.removeprefix('OpenLRM: ')}"[:63])
        ticker.report(level, message)
        return True

    return step
