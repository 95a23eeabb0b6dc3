"""Error types raised by Facesmith. Expected failures raise these; bugs stay tracebacks."""

from __future__ import annotations

from pathlib import Path


class FacesmithError(Exception):
    """Base for every failure a user can act on; the message names the file and the reason."""


class CancelledError(FacesmithError):
    """The user cancelled the run (Esc in Blender, Ctrl-C or SIGTERM on the command line)."""


class ModelFileError(FacesmithError):
    """A FLAME model file is missing, of the wrong type, truncated or malformed."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingAssetError(FacesmithError):
    """A needed file is absent; the message says where to set it."""


class NoFaceError(FacesmithError):
    """No face was found in an image."""


class BackendError(FacesmithError):
    """A landmark or inference backend is unavailable or failed."""
