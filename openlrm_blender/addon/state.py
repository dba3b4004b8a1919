"""What the sidebar and the preferences show about the work under way: the run, the
downloads and installs, the last messages. Lives for the session, never saved in a .blend."""

from __future__ import annotations

from ..jobs.downloads import Download
from ..jobs.job import Engine, Job, Status
from ..jobs.matmul_rate import Measurement, Rate
from ..jobs.pytorch_install import Check, Install

TICK_SECONDS = 0.1  # how often a timer (addon/ticker.py) looks at the work under way


class Runtime:
    """What the sidebar shows about the current run; never saved in a .blend."""

    engine = Engine()  # tests name a fake engine here
    job: Job | None = None
    status: Status | None = None
    ticker = None  # the interactive run's timer function (addon/ticker.py)
    download: Download | None = None  # of a background removal model, from the preferences
    torch_install: Install | None = None
    torch_check: Check | None = None
    torch_devices: str = ""  # what the last check found
    matmul_rate: Rate | None = None  # this machine's, for a run's estimate (read from disk or measured)
    rate_looked_for = False  # on disk, where an earlier session kept it (once a session)
    rate_measurement: Measurement | None = None  # timing it in the model's process
    last_torch_error: str = ""
    last_torch_log: str = ""  # pip's output of the failed install
    last_error: str = ""
    last_error_kind: str | None = None  # engine.errors.kind_of: the panel tells errors apart by it
    last_info: str = ""
