"""Reading Live Link Face CSV takes (inference/arkit_csv.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.arkit import ARKIT_NAMES
from facesmith.inference.arkit_csv import (
    CsvError,
    capture_rate,
    gaze_rotations,
    parse_timecode,
    read_live_link_csv,
)

HEADER = "Timecode,BlendShapeCount,EyeBlinkLeft,JawOpen,MouthSmileLeft,TongueOut,HeadYaw,HeadPitch,HeadRoll"


def write(tmp_path, lines: list[str], name: str = "take.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_timecodes_and_capture_rate():
    assert parse_timecode("01:02:03:04.500") == (3723.0, 4.5)
    assert parse_timecode("00:00:00:29") == (0.0, 29.0)
    for bad in ("00:00:00", "00:61:00:00", "aa:00:00:00"):
        with pytest.raises(ValueError):
            parse_timecode(bad)


def timecodes(fps: int, first: int, rows: int, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(whole seconds, FF) of `rows` rows captured every `every` FF counts at `fps`, from FF `first` of second 0."""
    counts = first + every * np.arange(rows)
    return (counts // fps).astype(float), (counts % fps) + 0.868  # Live Link Face's FF carries a fraction


@pytest.mark.parametrize(
    ("fps", "first", "rows", "every", "expected", "warns"),
    [
        (60, 7, 29, 1, 60.0, "too short to cross a second"),  # a reported take's start: FF 7..35 was read as 48 fps
        (60, 40, 29, 1, 60.0, None),  # crosses a second: measured
        (30, 20, 29, 1, 30.0, None),
        (25, 0, 60, 1, 25.0, None),
        (60, 0, 200, 2, 60.0, None),  # every other frame kept: the step is 2 FF
        (55, 0, 200, 1, 60.0, "measure 55 fps, not a usual capture rate"),
        (60, 0, 1, 1, 60.0, None),  # one row: nothing to time
    ],
)
def test_the_capture_rate_is_measured_where_the_timecode_crosses_a_second(fps, first, rows, every, expected, warns):
    rate, warning = capture_rate(*timecodes(fps, first, rows, every))
    assert rate == expected
    assert warning is None if warns is None else warns in warning


def test_a_rate_the_timecodes_exceed_is_not_used_to_read_them(tmp_path):
    whole, ff = timecodes(60, 7, 120)  # a reported take: --capture-fps 30 failed "goes backwards at line 55"
    rows = [HEADER] + [f"00:00:{int(s):02d}:{f:06.3f},61,0,0,0,0,0,0,0" for s, f in zip(whole, ff, strict=True)]
    take = read_live_link_csv(write(tmp_path, rows), capture_fps=30)
    assert take.capture_fps == 60.0 and np.all(np.diff(take.seconds) > 0)
    assert any("more than 30 fps allows: read at 60 fps" in w for w in take.warnings)


def test_a_take_is_read_with_camel_case_names_and_seconds(tmp_path):
    rows = [HEADER] + [f"00:00:01:{f:02d}.000,61,0.{f % 10},{f / 60:.3f},1.4,-0.2,0.1,0.0,0.0" for f in range(50, 60)]
    rows += [f"00:00:02:{f:02d}.500,61,0.5,0.5,0.5,0.0,0.1,0.0,0.0" for f in range(3)]
    take = read_live_link_csv(write(tmp_path, rows))
    assert take.capture_fps == 60.0 and take.frames == 13
    assert list(take.weights) == ["eyeBlinkLeft", "jawOpen", "mouthSmileLeft", "tongueOut"]
    np.testing.assert_allclose(take.seconds[:3], [0, 1 / 60, 2 / 60])
    assert take.seconds[-1] == pytest.approx((60 + 2.5 - 50) / 60)
    assert take.weights["mouthSmileLeft"].max() == 1.0 and take.weights["tongueOut"].min() == 0.0  # clipped
    assert read_live_link_csv(write(tmp_path, rows), capture_fps=120).seconds[1] == pytest.approx(1 / 120)
    np.testing.assert_allclose(take.scene_frames(30, start=5)[:2], [5, 5.5])
    (missing,) = take.warnings  # 4 of 52 columns: the others named
    assert "4 of the 52" in missing and "eyeLookInLeft" in missing and "jawOpen" not in missing


def test_a_take_with_every_column_and_a_clear_rate_has_no_warning(tmp_path):
    header = "Timecode,BlendShapeCount," + ",".join(n[0].upper() + n[1:] for n in ARKIT_NAMES)
    rows = [header] + [f"00:00:0{k // 60}:{k % 60:02d}.5,61," + ",".join(["0.1"] * 52) for k in range(50, 70)]
    take = read_live_link_csv(write(tmp_path, rows))
    assert take.warnings == () and take.capture_fps == 60.0 and len(take.weights) == 52


@pytest.mark.parametrize(
    ("weights", "bone", "pitch", "yaw"),
    [
        ({"eyeLookUpLeft": 1.0}, "eye_L", -0.44, 0.0),  # up: the pupil (+z) turns to +y, a negative x rotation
        ({"eyeLookDownLeft": 1.0}, "eye_L", 0.52, 0.0),
        ({"eyeLookOutLeft": 1.0}, "eye_L", 0.0, 0.52),  # out of the left eye: to the subject's left, +x
        ({"eyeLookInLeft": 0.5}, "eye_L", 0.0, -0.26),
        ({"eyeLookOutRight": 1.0}, "eye_R", 0.0, -0.52),  # out of the right eye: to the subject's right, −x
        ({"eyeLookInRight": 1.0, "eyeLookUpRight": 0.5}, "eye_R", -0.22, 0.52),
    ],
)
def test_gaze_weights_turn_the_eye_bones(weights, bone, pitch, yaw):
    rotations = gaze_rotations({n: np.array([0.0, w]) for n, w in weights.items()})
    assert list(rotations) == [bone]
    np.testing.assert_allclose(rotations[bone], [[0, 0, 0], [pitch, yaw, 0]])
    assert gaze_rotations({"jawOpen": np.zeros(2)}) == {}


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([], "empty file"),
        (["time,EyeBlinkLeft", "1,0.5"], "no Timecode column"),
        (["Timecode,BlendShapeCount,Foo", "00:00:00:00,1,0.2"], "no ARKit blendshape column"),
        ([HEADER], "no frames"),
        ([HEADER, "00:00:00:00,61,0.1,x,0,0,0,0,0"], "line 2"),
        ([HEADER, "00:00:00:00,61,0.1"], "line 2: too few columns"),
        ([HEADER, "00:00:01:00,61,0,0,0,0,0,0,0", "00:00:00:00,61,0,0,0,0,0,0,0"], "goes backwards at line 3"),
        ([HEADER, "00:00:00:inf,61,0,0,0,0,0,0,0"], "line 2: timecode .* is out of range"),  # found by fuzzing
        ([HEADER, "00:00:00:nan,61,0,0,0,0,0,0,0"], "line 2: timecode .* is out of range"),
        ([HEADER, "9" * 400 + ":00:00:00,61,0,0,0,0,0,0,0"], "line 2: timecode .* is out of range"),  # OverflowError
        ([HEADER, "00:00:00:00,61," + "0," * 40_000 + "0"], "a line longer than 65,536 characters"),
    ],
)
def test_what_is_not_a_take_fails_with_the_file_and_the_reason(tmp_path, lines, reason):
    path = write(tmp_path, lines)
    with pytest.raises(CsvError, match=reason) as info:
        read_live_link_csv(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_binary_and_missing_files(tmp_path):
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    with pytest.raises(CsvError, match="not a text CSV"):
        read_live_link_csv(binary)
    with pytest.raises(CsvError, match="no such file"):
        read_live_link_csv(tmp_path / "nope.csv")
