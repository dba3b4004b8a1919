"""One press of Generate: one image, or several one after another through the same worker
(the model stays loaded), each made into its own object; several go side by side into a
collection of their own. ``tick`` is the interactive path's timer step and ``run_all`` the
headless one: plain Python around ``bpy`` calls, so tests can drive them by hand where
Blender has no event loop (background mode). ``Steps`` is what any press of several jobs in
a row shares (Paint from Photo's too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import bpy

import numpy as np

from ..engine.input.read import ImageSource
from ..jobs.job import Job, Status
from . import importer, ticker
from .state import Runtime

# What a finished run tells the operator: its return set, a report level, a message.
Outcome = tuple[set[str], str, str]
GAP = 0.2  # between objects placed side by side


def photo_fit(facts: dict[str, float]) -> str:
    """How the photo was laid on a shape-only model's object (nothing for the others)."""
    if "camera_overlap" not in facts:
        return ""
    overlap = facts["camera_overlap"]
    if not facts.get("photo_laid"):
        return f"; coloured by height from the photo, which fits the shape badly (overlap {overlap:.2f})"
    return f"; the photo fits the shape with an overlap of {overlap:.2f}"


class Steps:
    """Jobs one after another through the same worker, on one bar: each item's job made by
    ``make_job(item, last)`` (``last``: the press's last, whose worker may go), and what its
    outcome does in ``item_done``; ``what`` names an item on the bar ("image 2 of 3")."""

    what = "image"

    def __init__(self, items: list, make_job: Callable[[object, bool], Job]) -> None:
        self.items, self.make_job = items, make_job
        self.index = 0
        self.cancelled = False
        self.job = make_job(self.source(0), len(items) == 1)
        Runtime.job, Runtime.status = self.job, self.shown(self.job.poll())
        Runtime.last_error = Runtime.last_info = ""
        Runtime.last_error_kind = None

    def source(self, index: int) -> object:
        """What ``make_job`` takes for an item."""
        return self.items[index][0]

    @property
    def batch(self) -> bool:
        return len(self.items) > 1

    def shown(self, status: Status) -> Status:
        """The current item's status as the sidebar shows it: on one bar for the whole press."""
        if not self.batch:
            return status
        fraction = (self.index + status.fraction) / len(self.items)
        return replace(status, fraction=fraction, batch=f"{self.what} {self.index + 1} of {len(self.items)}")

    def tick(self, context: bpy.types.Context) -> Outcome | None:
        """Take the latest progress for the panel; after each item, the next; at the end,
        the outcome. None while running."""
        status = self.job.poll()
        Runtime.status = self.shown(status)
        ticker.redraw()
        if not status.finished:
            return None
        if self.item_done(context, status) and self.next_item():
            self.job.start()
            return None
        return self.outcome(context)

    def run_all(self, context: bpy.types.Context) -> Outcome:
        """Every item in this thread (headless, or called from a script)."""
        while True:
            self.job.run()
            if not (self.item_done(context, self.job.poll()) and self.next_item()):
                return self.outcome(context)

    def next_item(self) -> bool:
        self.index += 1
        if self.index >= len(self.items):
            return False
        self.job = self.make_job(self.source(self.index), self.index == len(self.items) - 1)
        Runtime.job = self.job
        return True

    def item_done(self, context: bpy.types.Context, status: Status) -> bool:
        """What an item's outcome does; False when the press stops (cancelled, or failed)."""
        raise NotImplementedError

    def outcome(self, context: bpy.types.Context) -> Outcome:
        """The report for the whole press; the run is no longer the sidebar's."""
        raise NotImplementedError


class Run(Steps):
    def __init__(
        self, images: list[tuple[ImageSource | tuple[ImageSource, ...], str]],
        make_job: Callable[[ImageSource | tuple[ImageSource, ...], bool], Job], smooth_shading: bool,
        record: dict[str, object] | None = None,
    ) -> None:  # fmt: skip
        """``images``: each source (or several photos of one object, a tuple) and its object's
        name; ``make_job(source, last)`` makes the job for one; ``record``: custom properties
        every object made gets (what made it)."""
        self.smooth_shading = smooth_shading
        self.record = record or {}
        self.made, self.failures = [], []
        self.quads_failed: list[tuple[str, str]] = []  # each object left as triangles, and why (the remesh failed)
        self.collection: bpy.types.Collection | None = None
        self.offset = 0.0
        self.seconds = 0.0
        super().__init__(images, make_job)

    def item_done(self, context: bpy.types.Context, status: Status) -> bool:
        """Make the image's object (or note its error); False when the batch stops (cancelled)."""
        name = self.items[self.index][1]
        if status.cancelled:
            self.cancelled = True
            return False
        if status.error:
            self.failures.append((name, status.error, status.error_kind))
            return True
        mesh = status.quads if status.quads is not None else status.result.mesh
        self.job.progress("import", 0.0, f"{len(mesh.vertices):,} vertices")
        obj = importer.add_object(context, name, mesh, self.smooth_shading, self.batch_collection(context))
        for key, value in self.record.items():  # a number left to the model: the one it used
            value = status.settings.get(key.removeprefix("openlrm_")) if value is None else value
            if value is not None:
                obj[key] = value
        if "camera_overlap" in status.result.facts:  # how well the photo fitted a shape-only model's object
            obj["openlrm_photo_fit"] = round(status.result.facts["camera_overlap"], 3)
        if self.batch:  # side by side along X, in the order they were given
            half = float(np.abs(mesh.vertices[:, 0]).max()) if len(mesh.vertices) else 0.0
            self.offset += half if self.made else 0.0
            obj.location.x += self.offset
            self.offset += half + GAP
        self.job.progress("import", 1.0, obj.name)
        if status.quads is not None:
            faces = f"{len(status.quads.sizes):,} faces ({status.quads.quad_share:.0%} quads)"
        else:
            faces = f"{len(mesh.faces):,} faces"
        if status.quads_error:  # the triangles stay: said, not hidden
            self.quads_failed.append((obj.name, status.quads_error))
        self.made.append((obj, len(mesh.vertices), faces, photo_fit(status.result.facts)))
        self.seconds += status.result.timings["total"]
        return True

    def batch_collection(self, context: bpy.types.Context) -> bpy.types.Collection | None:
        if self.batch and self.collection is None:
            self.collection = bpy.data.collections.new("Image to 3D")
            context.collection.children.link(self.collection)
        return self.collection

    def outcome(self, context: bpy.types.Context) -> Outcome:
        """The report for the whole press: what was made, what failed, whether it was cancelled."""
        Runtime.job, Runtime.status = None, None
        failed = "; ".join(f"{name}: {error}" for name, error, _ in self.failures)
        if not self.batch:
            if self.cancelled:
                Runtime.last_info = "Cancelled"
                return {"CANCELLED"}, "INFO", "OpenLRM: cancelled"
            if self.failures:
                _, error, kind = self.failures[0]
                Runtime.last_error, Runtime.last_error_kind = error, kind
                return {"CANCELLED"}, "ERROR", error
            obj, vertices, faces, fit = self.made[0]
            Runtime.last_info = f"{obj.name}: {vertices:,} vertices, {faces}{fit}"
            message = f"OpenLRM: {Runtime.last_info} in {self.seconds:.1f} s"
            if self.quads_failed:
                Runtime.last_info += "; no quads (the triangles are kept)"
                return (
                    {"FINISHED"},
                    "WARNING",
                    f"{message}; no quads: {self.quads_failed[0][1]}; the triangles are kept",
                )
            return {"FINISHED"}, "INFO", message
        made = f"{len(self.made)} of {len(self.items)} images made"
        if self.quads_failed:
            made += f" (left as triangles, no quads: {'; '.join(f'{name}: {why}' for name, why in self.quads_failed)})"
        where = f" into the collection '{self.collection.name}'" if self.collection is not None else ""
        if failed:
            Runtime.last_error, Runtime.last_error_kind = f"{made}; {failed}", self.failures[0][2]
        Runtime.last_info = f"{made}{where}" + (" (cancelled: the finished ones are kept)" if self.cancelled else "")
        if not self.made:
            return {"CANCELLED"}, "ERROR" if failed else "INFO", f"OpenLRM: {Runtime.last_error or Runtime.last_info}"
        level = "WARNING" if failed or self.quads_failed else "INFO"
        return (
            {"FINISHED"},
            level,
            f"OpenLRM: {Runtime.last_info} in {self.seconds:.1f} s" + (f"; {failed}" if failed else ""),
        )
