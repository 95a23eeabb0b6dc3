"""ARKit animation from a Live Link Face CSV (numpy only; addon/animate.py puts it on a head's shape keys).

Epic's Live Link Face app (iPhone face capture) exports each take as a CSV, a layout many ARKit tools also
write: a header `Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,...`
and one row per captured frame. Blendshape names are ARKit's in PascalCase (matched here without regard to case);
weights are 0..1. `Timecode` is `HH:MM:SS:FF` or `HH:MM:SS:FF.fff`: FF counts frames at the app's capture rate
(60 by default, 30 in its settings; not written in the CSV) and .fff is a fraction of a frame. The rate is taken
as the smallest usual one above the largest FF in the file, or given. Head and eye rotation columns are not
applied: their units and axes differ between app versions, and the ARKit eyeLook keys already turn the eyes.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arkit import ARKIT_NAMES
from .errors import FacesmithError

CAPTURE_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 120.0)  # fps the FF field can count at
MAX_ROWS = 2_000_000  # about 9 hours at 60 fps: more is not a take
MAX_LINE_CHARS = 65_536  # a take's line is about 600 characters (61 columns); lines are read at most this long
MAX_HOURS = 99  # the timecode's two-digit HH (larger numbers would overflow the seconds)


class CsvError(FacesmithError):
    """A CSV that is not a readable ARKit take."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class ArkitTake:
    path: Path
    seconds: np.ndarray  # (N,) from the first row
    weights: dict[str, np.ndarray]  # ARKit name (camelCase, as the head's shape keys) -> (N,) in 0..1
    capture_fps: float

    @property
    def frames(self) -> int:
        return len(self.seconds)

    def scene_frames(self, fps: float, start: int = 1) -> np.ndarray:
        """Each row's frame (float) in a scene at `fps`, the first at `start`."""
        return start + self.seconds * fps


def parse_timecode(text: str) -> tuple[float, float]:
    """`HH:MM:SS:FF[.fff]` -> (whole seconds, frames incl. the fraction). ValueError if malformed."""
    parts = text.strip().split(":")
    if len(parts) != 4:
        raise ValueError(f"timecode {text!r} is not HH:MM:SS:FF")
    h, m, s = (int(p) for p in parts[:3])
    frames = float(parts[3])
    if not (0 <= h <= MAX_HOURS and 0 <= m <= 59 and 0 <= s <= 59 and math.isfinite(frames) and frames >= 0):
        raise ValueError(f"timecode {text!r} is out of range")
    return h * 3600.0 + m * 60.0 + s, frames


def capture_rate(frame_fields: np.ndarray) -> float:
    """The smallest usual capture rate that counts every FF seen (FF runs 0 .. rate − 1)."""
    top = float(np.floor(frame_fields.max())) + 1 if len(frame_fields) else 1.0
    return next((r for r in CAPTURE_RATES if r >= top), CAPTURE_RATES[-1])


def read_live_link_csv(path: str | Path, capture_fps: float | None = None) -> ArkitTake:
    """Read a take; one clear error naming the file and the reason when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CsvError(path, "no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            whole, frames, values, columns = _read_rows(path, csv.reader(_bounded_lines(f, path)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CsvError(path, f"not a text CSV ({exc.__class__.__name__})") from None
    if not np.isfinite(values).all():
        raise CsvError(path, "a weight is not a finite number")
    fps = float(capture_fps) if capture_fps else capture_rate(frames)
    seconds = whole + frames / fps
    if np.any(np.diff(seconds) < 0):
        raise CsvError(path, f"the timecode goes backwards at line {int(np.argmax(np.diff(seconds) < 0)) + 3}")
    weights = {name: np.clip(values[:, j], 0.0, 1.0) for j, name in enumerate(columns)}
    return ArkitTake(path, seconds - seconds[0], weights, fps)


def _bounded_lines(f, path: Path) -> Iterator[str]:
    """The file's lines, refused once one is longer than MAX_LINE_CHARS: a line is read whole before it is split."""
    while line := f.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise CsvError(path, f"a line longer than {MAX_LINE_CHARS:,} characters: not a take")
        yield line


def _read_rows(path: Path, reader: Iterator[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Timecodes (whole seconds, frames), the weights (rows, columns) and the ARKit columns by name, parsed a row at
    a time (memory: 8 bytes a number, not a Python string a cell)."""
    rows = (r for r in reader if any(c.strip() for c in r))
    header = next(rows, None)
    if header is None:
        raise CsvError(path, "empty file")
    lower = {h.strip().lower(): i for i, h in enumerate(header)}
    if "timecode" not in lower:
        raise CsvError(path, "no Timecode column: not a Live Link Face CSV")
    columns = {name: lower[name.lower()] for name in ARKIT_NAMES if name.lower() in lower}
    if not columns:
        raise CsvError(path, "no ARKit blendshape column (EyeBlinkLeft, JawOpen, ...)")
    whole, frames, values = array("d"), array("d"), array("d")
    for k, row in enumerate(rows, start=2):
        if k - 1 > MAX_ROWS:
            raise CsvError(path, f"more than {MAX_ROWS} rows")
        try:
            seconds, frame = parse_timecode(row[lower["timecode"]])
            weights = [float(row[i]) for i in columns.values()]
        except (ValueError, IndexError) as exc:
            raise CsvError(path, f"line {k}: {exc if isinstance(exc, ValueError) else 'too few columns'}") from None
        whole.append(seconds)
        frames.append(frame)
        values.extend(weights)
    if not whole:
        raise CsvError(path, "no frames after the header")
    return np.asarray(whole), np.asarray(frames), np.asarray(values).reshape(len(whole), len(columns)), columns
