"""ARKit animation from a Live Link Face CSV (numpy only; addon/animate.py puts it on a head's shape keys).

Epic's Live Link Face app (iPhone face capture) exports each take as a CSV, a layout many ARKit tools also
write: a header `Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,...`
and one row per captured frame. Blendshape names are ARKit's in PascalCase (matched here without regard to case);
weights are 0..1. `Timecode` is `HH:MM:SS:FF` or `HH:MM:SS:FF.fff`: FF counts frames at the app's capture rate
(60 by default, 30 in its settings; not written in the CSV) and .fff is a fraction of a frame. The rate is
measured where the timecode crosses a second (FF wraps from rate − 1 to 0), snapped to a usual one, or given; a
take too short to cross a second is read at the app's default rate, with a warning. Head and eye rotation columns
are not applied: their units and axes differ between app versions; the eyeLook weights turn the eyeballs instead
(`gaze_rotations`), as well as the lids through the ARKit keys.
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
DEFAULT_CAPTURE_FPS = 60.0  # Live Link Face's default (and ARKit's face-tracking rate): what a short excerpt gets
RATE_TOLERANCE = 0.5  # fps: a measured rate further than this from a usual one is reported
# Eye rotation (radians) at an eyeLook weight of 1. ARKit does not publish one; these are the ranges ARKit-driven
# rigs commonly use (about 30° sideways and down, 25° up), within the fit's gaze limit (fit/gaze.py, 0.6 rad).
GAZE_RADIANS = {"In": 0.52, "Out": 0.52, "Up": 0.44, "Down": 0.52}
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
    warnings: tuple[str, ...] = ()  # an uncertain capture rate, missing blendshape columns

    @property
    def frames(self) -> int:
        return len(self.seconds)

    def scene_frames(self, fps: float, start: int = 1) -> np.ndarray:
        """Each row's frame (float) in a scene at `fps`, the first at `start`."""
        return start + self.seconds * fps

    def missing_message(self, head: str, missing: list[str]) -> str:
        """The warning line naming the take's ARKit names `missing` that the head `head` has no shape key for."""
        return f"{self.path.name}: {head} has no shape key for {', '.join(missing)} (not keyed)"


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


def capture_rate(whole: np.ndarray, frame_fields: np.ndarray) -> tuple[float, str | None]:
    """The rate the FF field counts at, from the timecodes (whole seconds, FF): (fps, a warning or None).

    Where the timecode crosses into the next second, FF wraps from rate − 1 to 0, so the rate is the last FF of a
    second plus the usual step minus the first FF of the next (median over the crossings: a dropped frame moves
    one). Without a crossing the largest FF only bounds the rate from below: the app's default is assumed."""
    floor = float(np.floor(frame_fields.max())) + 1 if len(frame_fields) else 1.0  # FF runs 0 .. rate − 1
    usual = [r for r in CAPTURE_RATES if r >= floor] or [CAPTURE_RATES[-1]]
    same = np.diff(whole) == 0
    steps = np.diff(frame_fields)[same]
    crossings = np.flatnonzero(np.diff(whole) == 1)
    if len(steps) and len(crossings):
        step = float(np.median(steps))
        measured = float(np.median(frame_fields[crossings] + step - frame_fields[crossings + 1]))
        rate = min(usual, key=lambda r: abs(r - measured))
        if abs(rate - measured) <= RATE_TOLERANCE:
            return rate, None
        return rate, (f"its timecodes measure {measured:.4g} fps, not a usual capture rate: read at {rate:g} fps "
                      "(give the rate if it is another)")  # fmt: skip
    rate = DEFAULT_CAPTURE_FPS if DEFAULT_CAPTURE_FPS in usual else usual[0]
    if len(frame_fields) < 2:
        return rate, None  # one row: no timing to get wrong
    return rate, (f"too short to cross a second, so its capture rate is unknown (FF reaches {floor - 1:g}): read at "
                  f"{rate:g} fps (give the rate if it is another)")  # fmt: skip


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
    fps, rate_warning = take_rate(whole, frames, capture_fps)
    seconds = whole + frames / fps
    if np.any(np.diff(seconds) < 0):
        raise CsvError(path, f"the timecode goes backwards at line {int(np.argmax(np.diff(seconds) < 0)) + 3}")
    weights = {name: np.clip(values[:, j], 0.0, 1.0) for j, name in enumerate(columns)}
    warnings = [f"{path.name}: {w}" for w in (rate_warning, missing_columns_warning(columns)) if w]
    return ArkitTake(path, seconds - seconds[0], weights, fps, tuple(warnings))


def take_rate(whole: np.ndarray, frames: np.ndarray, capture_fps: float | None) -> tuple[float, str | None]:
    """The rate to read FF at: the given one unless the file's FF values exceed it (FF 59 cannot count at 30 fps;
    dividing by it would make every second's last frames overtake the next second's first ones), else measured."""
    measured, warning = capture_rate(whole, frames)
    if not capture_fps:
        return measured, warning
    if len(frames) and float(np.floor(frames.max())) >= capture_fps:
        return measured, (f"its timecodes count to frame {float(np.floor(frames.max())):g} in a second, more than "
                          f"{capture_fps:g} fps allows: read at {measured:g} fps")  # fmt: skip
    return float(capture_fps), None


def missing_columns_warning(columns: dict[str, int]) -> str | None:
    """Which of ARKit's 52 blendshapes the file has no column for (their keys stay at rest), or None."""
    missing = [n for n in ARKIT_NAMES if n not in columns]
    if not missing:
        return None
    return f"{len(columns)} of the {len(ARKIT_NAMES)} ARKit blendshape columns; none for {', '.join(missing)} (left at rest)"


def gaze_rotations(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Eye bone rotations from the eyeLook weights: {"eye_L"/"eye_R": (N, 3) axis-angle in FLAME's frame (x to the
    subject's left, y up, z forward; rig.py)}, for the eyes with any eyeLook column. The ARKit keys move only the
    lids: the eyeballs are separate meshes turned by the eye bones. Pitch about x (up is negative), yaw about y
    (towards the subject's left is positive); Left is the subject's left eye, as ARKit names its blendshapes."""
    out = {}
    for side, bone, outward in (("Left", "eye_L", 1.0), ("Right", "eye_R", -1.0)):
        if not any(f"eyeLook{d}{side}" in weights for d in GAZE_RADIANS):
            continue
        n = len(next(iter(weights.values())))

        def w(direction: str, side: str = side, n: int = n) -> np.ndarray:
            return weights.get(f"eyeLook{direction}{side}", np.zeros(n)) * GAZE_RADIANS[direction]

        pitch = w("Down") - w("Up")
        yaw = outward * (w("Out") - w("In"))
        out[bone] = np.column_stack([pitch, yaw, np.zeros(n)])
    return out


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
