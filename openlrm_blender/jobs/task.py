"""One shape for the work the add-on does in a thread of Blender's process (a download,
a PyTorch install or check): the interface polls it on each timer tick, and it never
touches ``bpy``."""

from __future__ import annotations

import threading

from ..engine import Cancelled, CancelToken, EngineError


class Task:
    """``fraction`` and ``message`` while it runs; then ``finished``, with ``result`` or a
    one-line ``error``. Subclasses do the work in ``work`` and word its failures in ``explain``."""

    thread_name = "openlrm-task"

    def __init__(self) -> None:
        self.fraction, self.message = 0.0, ""
        self.finished, self.error, self.result = False, None, None
        self._token = CancelToken()

    def work(self) -> object:
        """The task itself, in the running thread; checks ``self._token`` where it can stop."""
        raise NotImplementedError

    def explain(self, error: EngineError | OSError | None) -> str:
        """The line the user reads for a failure (``None``: it was cancelled)."""
        return "cancelled" if error is None else str(error)

    def run(self) -> None:
        """To the end in this thread (headless, scripts); the outcome is in the attributes."""
        try:
            self.result = self.work()
        except Cancelled:
            self.error = self.explain(None)
        except (EngineError, OSError) as error:
            self.error = self.explain(error)
        finally:
            self.finished = True

    def start(self) -> None:
        threading.Thread(target=self.run, name=self.thread_name, daemon=True).start()

    def cancel(self) -> None:
        self._token.cancel()
