"""What the command line prints, and hiding what third-party libraries print (TensorFlow Lite, absl, the
glTF/FBX exporters, Cycles) unless --verbose.

Those libraries write to file descriptors 1 and 2 from native code as well as from Python, so only
redirecting the descriptors hides them. Facesmith's own lines go to duplicates of the original
descriptors, taken before the redirection.

Every line Facesmith prints passes `printable`: messages name files, and a file name may hold control characters.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from ..inference.progress import printable


@dataclass(frozen=True)
class Console:
    out: TextIO
    err: TextIO

    def line(self, text: str) -> None:
        print(printable(text), file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(printable(text), file=self.err, flush=True)

    def warn(self, text: str) -> None:
        print(f"facesmith: warning: {printable(text)}", file=self.err, flush=True)

    def error(self, text: str) -> None:
        print(f"facesmith: error: {printable(text)}", file=self.err, flush=True)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _own_stream(stream: TextIO, saved_fd: int, fd: int) -> TextIO:
    """A stream that still reaches what `stream` reached once descriptor `fd` is redirected."""
    try:
        backed = stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # e.g. pytest's capture: not a descriptor, keep it
        backed = False
    return os.fdopen(os.dup(saved_fd), "w", buffering=1, encoding="utf-8", errors="replace") if backed else stream


@contextmanager
def quiet_output(quiet: bool) -> Iterator[Console]:
    """A Console for the command's own lines; with `quiet`, everything else written to stdout/stderr (by
    Python or native code) goes to the null device for the duration."""
    logger = logging.getLogger("facesmith")
    if not quiet:
        console = Console(sys.stdout, sys.stderr)
        with _logging_to(logger, console.err, logging.DEBUG):
            yield console
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = Console(_own_stream(sys.stdout, saved[1], 1), _own_stream(sys.stderr, saved[2], 2))
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        with _logging_to(logger, console.err, logging.WARNING):
            yield console
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
        for ours, theirs in ((console.out, sys.stdout), (console.err, sys.stderr)):
            if ours is not theirs:
                ours.close()


@contextmanager
def _logging_to(logger: logging.Logger, stream: TextIO, level: int) -> Iterator[None]:
    """Facesmith's log records go to `stream` as "facesmith: warning: ..." lines while the command runs."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_PrintableFormatter("facesmith: %(levelname)s: %(message)s"))
    old = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]
