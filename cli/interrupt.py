"""Ctrl-C (SIGINT) and SIGTERM on the command line.

The first signal only sets `cancel`; the pipeline and the Blender writer look at it between steps (each
a few seconds at most), so a run stops with its staging folder removed and its batch report written.
Raising inside the handler instead would land in whatever Python code runs at that moment, including
Cycles' render loop or the glTF exporter, which catch it and carry on. A second signal stops at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A second signal: stop now (a BaseException, like KeyboardInterrupt, so `except Exception` lets it by)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + signum


class Interrupt:
    """Context manager installing the handlers in the main thread, restoring the previous ones on exit."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.signum = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.cancel.is_set():
            raise Interrupted(signum)
        self.signum = signum
        self.cancel.set()

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
