"""Writing files so that a reader never sees half of one: temp file in the same folder, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

EXPORT_FORMATS = ("blend", "glb", "fbx")  # the files a head is written as (addon/head.py writes them)


def atomic_path_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call write(temp_path) for a temp file beside `path` with the same extension (exporters choose their
    format by it), then rename it over `path`; no trace on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        os.replace(tmp, path)
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
