"""`facesmith model info` / `build-dev` through the real entry points."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from facesmith.cli.main import main
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.flame.model import model_arrays

from ..conftest import FLAME_PARTS


def test_model_info_json_for_dev_model(tmp_path, dev_model, capsys):
    path = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    assert main(["model", "info", "--json", "--flame", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["vertices"], info["faces"], info["joints"]) == (5023, 9976, 5)
    assert (info["shape_components"], info["expression_components"]) == (50, 50)
    assert info["development_model"] is True and info["origin"] == "--flame"


def test_model_info_for_official_pickle_via_env(tmp_path, dev_model, write_official_pickle, capsys, monkeypatch):
    path = write_official_pickle(tmp_path / "flame2023.pkl", model_arrays(dev_model))
    monkeypatch.setenv("FACESMITH_FLAME", str(path))
    assert main(["model", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["vertices"], info["shape_components"], info["expression_components"]) == (5023, 50, 50)
    assert info["development_model"] is False and info["origin"] == "FACESMITH_FLAME"


def test_bad_model_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "model.pkl"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["model", "info", "--flame", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"facesmith: error: {bad}: is a JPEG image, not a FLAME model (.pkl or .npz)"


@pytest.mark.skipif(not FLAME_PARTS.is_dir(), reason="needs ../shared/flame")
def test_build_dev_then_info_as_subprocess(tmp_path):
    out = tmp_path / "models" / "dev.npz"
    cmd = [sys.executable, "-m", "facesmith.cli"]
    subprocess.run([*cmd, "model", "build-dev", "--parts", str(FLAME_PARTS), "-o", str(out)], check=True)
    res = subprocess.run(
        [*cmd, "model", "info", "--json", "--flame", str(out)], check=True, capture_output=True, text=True
    )
    assert json.loads(res.stdout)["vertices"] == 5023
    assert "development model" in res.stderr  # the warning reaches the user


def test_refine_option_reaches_the_fit_options():
    from facesmith.cli.main import build_parser, pipeline_options

    for argv, mode in (
        (["fit", "a.jpg", "b.jpg"], "auto"),
        (["reconstruct", "a.jpg", "-o", "x", "--refine", "off"], "off"),
    ):
        assert pipeline_options(build_parser().parse_args(argv)).fit.refine == mode
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "a.jpg", "--refine", "sometimes"])


def test_animate_flags_default_to_the_options_the_add_on_uses():
    """`facesmith animate` without flags tracks and keys as the add-on's Animate from Video (AnimateOptions()); each
    flag reaches its option."""
    from facesmith.cli.main import animate_options, build_parser
    from facesmith.inference.options import AnimateOptions, TrackOptions

    parse = build_parser().parse_args
    assert animate_options(parse(["animate", "clip.mp4", "-o", "x.blend"])) == AnimateOptions()
    argv = ["animate", "f", "-o", "x.blend", "--start", "3", "--end", "9", "--stride", "2", "--smooth", "1", "--fps",
            "12", "--keys", "arkit", "--identity-frames", "2"]  # fmt: skip
    assert animate_options(parse(argv)) == AnimateOptions(TrackOptions(3, 9, 2, 1, fps=12.0), "arkit", 2)
