"""A text progress bar for long command-line work (training, tracking footage): one line on a terminal."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """One line on a terminal (\\r), a line per update otherwise; step, loss, rate, ETA."""

    def __init__(self, total: int, start: int, stream=sys.stderr) -> None:
        self.total, self.start, self.stream = total, start, stream
        self.t0 = time.perf_counter()
        self.tty = stream.isatty()

    def update(self, step: int, text: str) -> None:
        done = step - self.start
        elapsed = time.perf_counter() - self.t0
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
