"""A text progress bar for long command-line work (training, tracking footage): one line on a terminal."""

from __future__ import annotations

import sys
import time

PIPED_SECONDS = 10.0  # without a terminal (a log, a pipe) a line at most this often: not one per frame


class ProgressBar:
    """One line on a terminal (\\r); otherwise the first update, then a line every PIPED_SECONDS and the last
    step; step, loss, rate, ETA."""

    def __init__(self, total: int, start: int, stream=sys.stderr, clock=time.perf_counter) -> None:
        self.total, self.start, self.stream, self.clock = total, start, stream, clock
        self.t0 = clock()
        self.tty = stream.isatty()
        self.printed: float | None = None  # when the last line went out without a terminal

    def update(self, step: int, text: str) -> None:
        now = self.clock()
        if not (self.tty or step >= self.total or self.printed is None or now - self.printed >= PIPED_SECONDS):
            return
        self.printed = now
        done = step - self.start
        elapsed = now - self.t0
        eta = elapsed / max(done, 1) * (self.total - step)
        width = 24
        fill = int(width * step / max(self.total, 1))
        line = (f"[{'#' * fill}{'.' * (width - fill)}] {step}/{self.total} {text} "
                f"ETA {int(eta // 3600):d}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}")  # fmt: skip
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
