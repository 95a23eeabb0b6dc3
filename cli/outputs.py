"""Where a head's files go: names and folders checked before any work, one writer per head at a time
(a lock), a staging folder per head, and a commit that makes the set appear complete or not at all.

A head NAME in folder OUT is the set OUT/NAME.{blend,glb,fbx} (those asked for), OUT/NAME.json and
OUT/NAME_preview.png (when asked for). NAME.json is committed last and removed first: a set without its
JSON is incomplete and is redone by the next run. While a run writes NAME it holds an exclusive lock on
OUT/.NAME.facesmith-lock (a `filelock` lock: flock on POSIX, LockFileEx on Windows) and stages in
OUT/.NAME.facesmith-staging-XXXX/; the operating system drops the lock when the process dies, so the next run in
OUT recognises such a folder as stale and removes it, and its lock file with it.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from ..inference.errors import FacesmithError
from ..inference.files import EXPORT_FORMATS
from ..inference.texture.maps import TEXTURE_MAPS

STAGING_MARK = ".facesmith-staging-"
LOCK_SUFFIX = ".facesmith-lock"
LOCK_POLL_S = 0.05  # how often a waiting lock is tried again
MAX_NAME_BYTES = 200  # leaves room for suffixes under the usual 255-byte file name limit


class OutputError(FacesmithError):
    """An output path that cannot be used; the message names it and the reason."""


class HeadBusyError(OutputError):
    """Another run is writing the same head."""


def check_name(name: str) -> str:
    """A head name that is one plain file name (no folders, not hidden, not empty)."""
    reasons = (
        (not name or not name.strip(), "is empty"),
        (any(sep and sep in name for sep in ("/", os.sep, os.altsep)), "contains a path separator"),
        (name in (".", ".."), "is not a file name"),
        (name.startswith("."), "starts with '.' (hidden names are used for staging)"),
        ("\0" in name or any(ord(c) < 32 for c in name), "contains control characters"),
        (len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES, f"is longer than {MAX_NAME_BYTES} bytes"),
    )
    for bad, reason in reasons:
        if bad:
            raise OutputError(f"invalid name {name!r}: {reason}")
    return name


def _probe_writable(folder: Path, target: Path | None = None) -> None:
    """Create and remove a file in `folder`: the only test that also holds for root and read-only mounts. The error
    names `target`, the folder to be created in `folder`, when there is one."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".facesmith-probe-", dir=folder)
    except OSError as exc:
        # ENOENT in a folder that exists: a virtual file system (/proc) that makes no files; strerror would say
        # "No such file or directory" about a folder that is there.
        reason = "its file system takes no new files" if exc.errno == errno.ENOENT else exc.strerror or str(exc)
        raise OutputError(
            f"{folder}: not writable ({reason})"
            if target is None
            else f"{target}: cannot be created in {folder} ({reason})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_folder(folder: Path) -> None:
    """The output folder exists and is writable, or can be created; checked before any work starts."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{folder}: cannot be created, {existing} is not a folder")
    _probe_writable(existing, None if existing == folder else folder)


@contextmanager
def removed_if_empty(folder: Path) -> Iterator[None]:
    """Around a command that may create `folder` (and folders above it): those it creates are removed again when
    they are empty at the end, so a failed or stopped run leaves no trace."""
    created = []  # deepest first
    path = folder
    while not path.exists() and path.parent != path:
        created.append(path)
        path = path.parent
    try:
        yield
    finally:
        for path in created:
            try:
                path.rmdir()
            except OSError:  # holds what the run wrote (or was never made)
                break


def check_json_path(path: Path) -> Path:
    """`fit --json`: a .json file path whose folder exists and is writable (its .npz goes beside it)."""
    if path.suffix.lower() != ".json":
        raise OutputError(f"{path}: --json takes a .json file path (the arrays go to {path.stem}.npz beside it)")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; --json takes a .json file path")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    for target in (path, path.with_suffix(".npz")):
        if target.exists() and not target.is_file():
            raise OutputError(f"{target}: exists and is not a file")
    _probe_writable(path.parent)
    return path


@dataclass(frozen=True)
class HeadFiles:
    folder: Path
    name: str
    formats: tuple[str, ...] = EXPORT_FORMATS
    preview: bool = True

    @property
    def report(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def preview_path(self) -> Path:
        return self.folder / f"{self.name}_preview.png"

    @property
    def texture_paths(self) -> tuple[Path, ...]:
        return tuple(self.folder / f"{self.name}_{m}.png" for m in TEXTURE_MAPS)

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files of this set, the JSON last."""
        made = [self.folder / f"{self.name}.{fmt}" for fmt in self.formats]
        return (*made, *self.texture_paths, *([self.preview_path] if self.preview else []), self.report)

    def known(self) -> tuple[Path, ...]:
        """Every file a head of this name can have, whatever the options."""
        made = (self.folder / f"{self.name}.{fmt}" for fmt in EXPORT_FORMATS)
        return (*made, *self.texture_paths, self.preview_path, self.report)

    def complete(self) -> bool:
        return all(p.is_file() for p in self.paths)

    def check(self) -> None:
        """No target is a folder or other non-file (it could not be replaced)."""
        for path in self.known():
            if path.exists() and not path.is_file():
                raise OutputError(f"{path}: exists and is not a file")


def _lock_path(folder: Path, name: str) -> Path:
    return folder / f".{name}{LOCK_SUFFIX}"


@contextmanager
def head_lock(folder: Path, name: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock on `name` in `folder` (a head's, or the batch report's), waiting up to `wait_s` seconds
    for another run to release it; then fail with a message saying another run is writing it.

    The lock file goes with the lock, removed the way each system allows without letting two runs in: on POSIX
    by the holder just before it unlocks (a waiter that then gets the lock on the removed file sees that it has
    no name left and locks the new one: filelock checks the link count), on Windows by filelock after the handle
    is closed (a file that is open cannot be removed there). Without `fallback_to_soft` a file system without
    flock is an error rather than a marker file that would outlive a killed run."""
    path = _lock_path(folder, name)
    lock = FileLock(path, timeout=wait_s, poll_interval=LOCK_POLL_S, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        raise HeadBusyError(
            f"{folder / name}: another Facesmith run is writing this head; try again when it ends"
        ) from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot be locked ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        try:
            if os.name != "nt":
                path.unlink(missing_ok=True)
        finally:
            lock.release()


def remove_stale(folder: Path) -> list[Path]:
    """Remove staging folders and lock files that runs killed outright left in `folder` (their locks are
    free); those of runs still working are left alone. Returns what was removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    names = set()
    for entry in folder.iterdir():
        if entry.name.startswith(".") and STAGING_MARK in entry.name:
            names.add(entry.name[1:].rpartition(STAGING_MARK)[0])
        elif entry.name.startswith(".") and entry.name.endswith(LOCK_SUFFIX):
            names.add(entry.name[1 : -len(LOCK_SUFFIX)])
    for name in sorted(names):
        try:
            with head_lock(folder, name):
                removed += remove_staging(folder, name)
        except HeadBusyError:
            continue
    return removed


def remove_staging(folder: Path, name: str) -> list[Path]:
    """The head's staging folders (call with its lock held)."""
    stale = [p for p in folder.glob(f".{glob.escape(name)}{STAGING_MARK}*") if p.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


@contextmanager
def staging(folder: Path, name: str) -> Iterator[Path]:
    """A fresh staging folder beside the outputs (same file system: the commit is a rename), always removed."""
    path = Path(tempfile.mkdtemp(prefix=f".{name}{STAGING_MARK}", dir=folder))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def commit(staged: Path, files: HeadFiles) -> tuple[Path, ...]:
    """Move the staged set into place: the old JSON goes first and the new one comes last, so a set is never
    complete while it mixes two runs; files of this name that the new set does not have are removed."""
    missing = [p.name for p in files.paths if not (staged / p.name).is_file()]
    if missing:
        raise OutputError(f"{files.folder / files.name}: not all files were written ({', '.join(missing)})")
    files.report.unlink(missing_ok=True)
    for path in files.known():
        if path not in files.paths:
            path.unlink(missing_ok=True)
    for path in files.paths:
        os.replace(staged / path.name, path)
    return files.paths
