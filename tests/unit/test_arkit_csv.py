"""Reading Live Link Face CSV takes (inference/arkit_csv.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.arkit_csv import CsvError, capture_rate, parse_timecode, read_live_link_csv

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
    assert capture_rate(np.array([0, 12, 29.9])) == 30.0
    assert capture_rate(np.array([0, 30, 59.5])) == 60.0


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
