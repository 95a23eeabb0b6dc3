"""Headless commands: `facesmith reconstruct`, `facesmith batch`, and the Blender-style entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from facesmith.cli.main import main
from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED

FACES, BAD = SHARED / "data" / "faces", SHARED / "data" / "bad_inputs"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")


@pytest.fixture(scope="module")
def model_file(dev_model, tmp_path_factory):
    return save_model_npz(dev_model, tmp_path_factory.mktemp("model") / "dev_flame.npz")


def test_reconstruct_writes_the_blend_exports_maps_and_preview(bpy, model_file, tmp_path, capsys):
    assert main(["reconstruct", str(FACES / "002_08.jpg"), "-o", str(tmp_path), "--flame", str(model_file)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    maps = ["002_08_albedo.png", "002_08_displacement.png", "002_08_eyes.png", "002_08_normal.png"]
    assert names == ["002_08.blend", "002_08.fbx", "002_08.glb", "002_08.json", *maps, "002_08_preview.png"]
    preview = Image.open(tmp_path / "002_08_preview.png")
    assert preview.size == (4 * 512, 512)  # photo | render | overlay | render turned 45°
    # The second and fourth panels are renders of the head, not empty frames, and from different sides.
    import numpy as np

    panels = np.asarray(preview.convert("RGB")).astype(float)
    front, turned = panels[:, 512:1024], panels[:, 1536:]
    for render in (front, turned):
        assert np.abs(render - 127.5).max() > 60 and render.std() > 10
    assert np.abs(front - turned).mean() > 5
    report = json.loads((tmp_path / "002_08.json").read_text())
    assert 0 <= report["photos"][0]["occluded_fraction"] < 0.3  # the share kept out of the albedo, per photo
    assert report["rig"]["corrective_drivers"] == 36 and {"fit", "build", "save", "preview"} <= set(
        report["timings_ms"]
    )


def test_existing_outputs_are_kept_unless_overwrite(bpy, model_file, tmp_path, capsys):
    args = [
        "reconstruct",
        str(FACES / "001_03.jpg"),
        "-o",
        str(tmp_path),
        "--flame",
        str(model_file),
        "--no-preview",
        "--no-fbx",
    ]
    assert main(args) == 0
    stamp = (tmp_path / "001_03.json").stat().st_mtime_ns
    assert main(args) == 0 and "exists" in capsys.readouterr().out  # skipped: as batch, not a failure
    assert (tmp_path / "001_03.json").stat().st_mtime_ns == stamp
    assert main([*args, "--overwrite"]) == 0 and (tmp_path / "001_03.json").stat().st_mtime_ns != stamp
    assert not (tmp_path / "001_03.fbx").exists()


def test_batch_survives_bad_inputs(bpy, model_file, tmp_path, capsys):
    code = main(["batch", str(BAD), str(tmp_path), "--flame", str(model_file), "--no-preview", "--no-fbx"])
    assert code == 1  # some inputs fail, so the batch reports failure...
    report = json.loads((tmp_path / "batch_report.json").read_text())
    status = {r["name"]: r["status"] for r in report["results"]}
    for bad in (
        "empty",
        "truncated",
        "text_not_image",
        "noise_256",
        "no_face_coffee",
        "no_face_landscape",
        "one_pixel",
    ):
        assert status[bad] == "failed"
        assert not any(p.name.startswith(bad) for p in tmp_path.iterdir())  # nothing partial
    for good in (
        "cmyk_face",
        "grayscale_face",
        "rgba_face",
        "exif_rotated_face",
        "jpeg_named_png",
        "two_faces",
        "huge_9000x9000",
    ):
        assert status[good] == "ok", good  # ...but carries on and converts the rest
        assert (tmp_path / f"{good}.blend").is_file() and (tmp_path / f"{good}.glb").is_file()
    messages = {r["name"]: r["message"] for r in report["results"]}
    assert "no face detected" in messages["no_face_coffee"] and "truncated" in messages["truncated"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    assert "7 failed" in capsys.readouterr().out


def test_blender_style_entry_point(model_file, tmp_path):
    """`blender -b --python-expr "...batch.main()" -- ARGS` passes ARGS after `--`; so does this."""
    expr = "import sys; from facesmith.cli import main; sys.exit(main())"
    args = ["reconstruct", str(FACES / "003_03.jpg"), "-o", str(tmp_path), "--flame", str(model_file), "--no-preview"]
    res = subprocess.run([sys.executable, "-c", expr, "--", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "003_03.glb").is_file()
    res = subprocess.run([sys.executable, "-m", "facesmith.cli", "batch", str(tmp_path / "missing"), str(tmp_path)],
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 1 and "missing: not a folder" in res.stderr
