"""Files the command line leaves and messages it prints: no stray files beside outputs, frames
named as the user knows them, a progress bar that does not flood a log. No Blender needed."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

from facesmith.inference.animate import footage_frame_label, relabelled
from facesmith.inference.files import atomic_path_write
from facesmith.inference.progress import PIPED_SECONDS, ProgressBar


def save_like_blender(path: Path) -> None:
    """What bpy.ops.wm.save_as_mainfile does (save_version 1): a file it saves over is kept as NAME.blend1."""
    if path.exists():
        path.rename(path.with_name(path.name + "1"))
    path.write_bytes(b"BLENDER")


def test_an_atomic_write_leaves_only_its_output(tmp_path):
    out = atomic_path_write(tmp_path / "animated.blend", save_like_blender)
    assert out.read_bytes() == b"BLENDER"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animated.blend"]  # no hidden .animated.xxxx.blend1


def test_a_staged_frame_is_named_as_the_users_file_and_frame():
    video = Path("/takes/interview.mp4")
    labels = {"/out/.facesmith-animate-x/frame_000042.png": footage_frame_label(video, 42)}
    message = relabelled("/out/.facesmith-animate-x/frame_000042.png: no face detected", labels)
    assert message == "/takes/interview.mp4, frame 42: no face detected"


def test_without_a_terminal_the_progress_bar_prints_now_and_then():
    stream = io.StringIO()  # not a terminal, as a log file or a pipe
    ticks = itertools.count(0.0, 0.05)  # 20 frames a second
    bar = ProgressBar(1000, 0, stream, clock=lambda: next(ticks))
    for step in range(1, 1001):
        bar.update(step, f"frame {step}")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 3 <= len(lines) <= 50 // PIPED_SECONDS + 3  # 50 s of work: the first, one per PIPED_SECONDS, the last
    assert lines[0].startswith("[") and " 1/1000 " in lines[0] and " 1000/1000 " in lines[-1]


def test_argparse_errors_and_progress_lines_are_escaped(capsys):
    """A file name with ESC in an argparse error or a progress line shows as an escape, not as a terminal command."""
    import pytest

    from facesmith.cli import main

    with pytest.raises(SystemExit):
        main(["animate", "clip.mp4", "-o", "x.blend", "more\x1b[2J.mp4", "\x1b]0;title\x07"])  # "unrecognized: ..."
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\\x1b" in err
    stream = io.StringIO()
    bar = ProgressBar(2, 0, stream)
    bar.update(1, "frame of clip\x1b[2J.mp4")
    assert "\x1b" not in stream.getvalue() and "\\x1b[2J" in stream.getvalue()
