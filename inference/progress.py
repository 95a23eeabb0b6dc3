"""A text progress bar for long command-line work (training, tracking footage): one line on a terminal.

Not tqdm: it prints descriptions and file names as given, where every line here passes `printable` (a file name may
hold terminal escapes), and without a terminal it still redraws one line with carriage returns, several times a
second, where a log here gets a whole line every PIPED_SECONDS; matching both would wrap tqdm in as much code as
this, and tqdm would be one more wheel in every extension zip and both Blender Pythons for it."""

from __future__ import annotations

import sys
import time

PIPED_SECONDS = 10.0  # without a terminal (a log, a pipe) a line at most this often: not one per frame

# Shown as escapes: control characters but tab and newline (ESC starts the sequences that move the cursor, recolour,
# retitle or clear a terminal; CR overwrites a line), Unicode's bidirectional overrides (they reorder what a line
# shows), and the surrogates Python decodes a file name's undecodable bytes to (printing them would raise).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
_ESCAPES |= {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_ESCAPES |= {c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)}


def printable(text: str) -> str:
    """`text` safe to write to a terminal, whatever file names it holds."""
    return text.translate(_ESCAPES)


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
        line = printable(f"[{'#' * fill}{'.' * (width - fill)}] {step}/{self.total} {text} "
                         f"ETA {int(eta // 3600):d}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}")  # fmt: skip
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
