"""Measure this machine's matrix-product rate for the sidebar's estimate of a run's time: a
short timing in the model's process, in the background."""

from __future__ import annotations

import bpy

from ...engine import torch_available
from ...engine.models.estimate import rate_precision
from ...jobs.matmul_rate import Measurement, Rate
from ..preferences import get_preferences, pytorch_root
from ..state import Runtime
from .tasks import TaskOperator


class OPENLRM_OT_measure_cpu(TaskOperator, bpy.types.Operator):
    """Time this machine's matrix products once (under a second, in the model's process) so the
    sidebar can say how long a run takes here; kept for later sessions"""

    bl_idname = "openlrm.measure_cpu"
    bl_label = "Measure This CPU"
    slot = "rate_measurement"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if Runtime.job is not None:  # a run would share the CPU with the timing
            cls.poll_message_set("Wait for the run to end: it would slow the timing down")
            return False
        if not torch_available():
            cls.poll_message_set("PyTorch is missing")
            return False
        return Runtime.rate_measurement is None

    def make_task(self, context: bpy.types.Context) -> Measurement:
        precisions = tuple(dict.fromkeys(("float32", rate_precision(get_preferences(context).precision))))
        return Measurement(precisions, pytorch_root(create=True), low_priority=not bpy.app.background)

    @staticmethod
    def finished(task: Measurement) -> str:
        rate: Rate = task.result
        Runtime.matmul_rate = rate
        rates = ", ".join(f"{gflops:.0f} GFLOP/s in {name}" for name, gflops in rate.gflops.items() if gflops)
        return f"OpenLRM: this CPU multiplies matrices at {rates}"
