"""Writing files so that a reader never sees half of one: temp file in the same folder, then rename."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import FacesmithError

EXPORT_FORMATS = ("blend", "glb", "fbx")  # the files a head is written as (addon/head.py writes them)
# Errors of the file system, not of the program: a full disk, a quota, permissions, a read-only mount, I/O.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EFBIG)


class WriteError(FacesmithError):
    """A file that could not be written; the message names it and the reason."""


def write_error(exc: OSError, path: str | Path | None = None) -> WriteError:
    """One line for an OSError met while writing: the file (the error's own, else `path`) and the reason."""
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc)
    return WriteError(f"{where}: cannot be written ({reason})" if where is not None else f"cannot write: {reason}")


def blender_write_error(exc: RuntimeError, path: str | Path) -> WriteError | None:
    """A Blender operator's RuntimeError that reports a file-system failure while writing `path` (its message
    holds the system's words for it, e.g. "No space left on device"), as one line; None for anything else."""
    text = str(exc)
    reason = next((os.strerror(code) for code in WRITE_ERRNOS if os.strerror(code) in text), None)
    return WriteError(f"{path}: cannot be written ({reason})") if reason else None


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Around a writer of `path` (a Blender operator, an exporter, Pillow): a file-system failure, as an OSError
    or as the RuntimeError a Blender operator raises for it, becomes one WriteError naming the file; anything
    else stays as it is (a bug)."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, path) from None
    except RuntimeError as exc:
        error = blender_write_error(exc, path)
        if error is None:
            raise
        raise error from None


def open_reason(exc: OSError, path: str | Path | None = None) -> str:
    """Why a file (`path`, when known) could not be opened or examined, in the words a user looks for: ELOOP's own
    "Too many levels of symbolic links" hides that the link leads back to itself, ENOENT that a link is broken."""
    if exc.errno == errno.ENOENT and path is not None and os.path.islink(path):
        return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
    reasons = {
        errno.ENOENT: "file not found",
        errno.ENOTDIR: "file not found (a folder in its path is a file)",
        errno.ELOOP: "symbolic link loop (the link points back at itself)",
    }
    return reasons.get(exc.errno, f"cannot be opened ({exc.strerror or exc})")


def atomic_path_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call write(temp_path) for a temp file beside `path` with the same extension (exporters choose their
    format by it), then rename it over `path`; no trace on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    os.close(fd)
    tmp = Path(name)
    # The writer gets a name no file holds yet: Blender keeps a file it saves over as NAME.blend1 (an empty hidden
    # .NAME.xxxx.blend1 beside every output), other writers may refuse one. mkstemp only reserved a unique name.
    tmp.unlink()
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
    except OSError as exc:  # the temp file's name means nothing to the user: name the target
        raise WriteError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call write(file) on a temp file beside `path`, then rename it over `path`; no trace on failure."""

    def to_file(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    return atomic_path_write(path, to_file)
