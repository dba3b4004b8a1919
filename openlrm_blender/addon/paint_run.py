"""One press of Paint from Photo: each selected object painted in turn by the same worker
(the model stays loaded), and only once every paint is back, all of them written at once: a
cancel or a failure midway leaves every object as it was, and one undo takes the paint away."""

from __future__ import annotations

from collections.abc import Callable

import bpy

from ..engine import Mesh
from ..jobs.job import Job, Status
from .painting import PaintTarget, apply_paint, changed
from .run import Outcome, Steps
from .state import Runtime


class PaintRun(Steps):
    what = "object"

    def __init__(self, targets: list[PaintTarget], make_job: Callable[[PaintTarget, bool], Job]) -> None:
        self.targets = targets
        self.painted: list[Mesh] = []
        self.failure: tuple[str, str, str | None] | None = None  # the object, the error and its kind
        self.seconds = 0.0
        super().__init__(targets, make_job)

    def source(self, index: int) -> PaintTarget:
        return self.targets[index]

    def item_done(self, context: bpy.types.Context, status: Status) -> bool:
        if status.cancelled:
            self.cancelled = True
            return False
        if status.error:
            self.failure = (self.targets[self.index].name, status.error, status.error_kind)
            return False
        self.painted.append(status.result.mesh)
        self.seconds += status.result.timings.get("total", 0.0)
        return True

    def outcome(self, context: bpy.types.Context) -> Outcome:
        if self.cancelled or self.failure:
            Runtime.job, Runtime.status = None, None
            if self.cancelled:
                Runtime.last_info = "Cancelled: nothing was painted"
                return {"CANCELLED"}, "INFO", "OpenLRM: cancelled, nothing was painted"
            name, error, kind = self.failure
            message = f"{name}: {error}" if self.batch else error
            Runtime.last_error, Runtime.last_error_kind = f"{message}; nothing was painted", kind
            return {"CANCELLED"}, "ERROR", Runtime.last_error
        names = self.targets[0].name if len(self.targets) == 1 else f"{len(self.targets)} objects"
        self.job.progress("import", 0.0, f"colours onto {names}")
        skipped = [why for why in map(changed, self.targets) if why]
        done, kept = [], []
        for target, painted in zip(self.targets, self.painted, strict=True):
            if not changed(target):
                kept += apply_paint(target, painted)
                done.append(target.name)
        Runtime.job, Runtime.status = None, None
        if not done:
            Runtime.last_error, Runtime.last_error_kind = "; ".join(skipped) + ": nothing was painted", None
            return {"CANCELLED"}, "ERROR", f"OpenLRM: {Runtime.last_error}"
        Runtime.last_info = f"Painted {', '.join(done)}"
        notes = [f"not painted: {'; '.join(skipped)}"] if skipped else []
        if kept:
            notes.append(
                f"the material{'s' if len(kept) > 1 else ''} {', '.join(repr(name) for name in kept)} kept as "
                f"{'they were' if len(kept) > 1 else 'it was'} (shared, or its base colour already wired): the "
                "paint is the 'Color' attribute (or the texture named after the object)"
            )
        message = f"OpenLRM: {Runtime.last_info} in {self.seconds:.1f} s" + "".join(f"; {note}" for note in notes)
        Runtime.last_info += "".join(f"; {note}" for note in notes)
        return {"FINISHED"}, "WARNING" if notes else "INFO", message
