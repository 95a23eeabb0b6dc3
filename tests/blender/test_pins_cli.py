"""`facesmith reconstruct PHOTO --pins PINS.json` end to end: the head is solved with the pin and says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesmith.cli.main import main
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import Reconstructor

from ..conftest import FACES

pytestmark = [pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}"), pytest.mark.slow]  # about 26 s


def test_reconstruct_with_pins_holds_the_pinned_point(bpy, dev_model, tmp_path, capsys):
    photo = FACES / "002_08.jpg"
    with Reconstructor(DEFAULTS, dev_model) as rec:
        auto = rec.fit([photo])
    fitted = auto.photos[0]
    vertex = 3564  # the nose tip
    xy = fitted.camera.project(fitted.vertices[vertex][None])[0] + np.array([8.0, 0.0])  # drag it 8 px right
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps([{"photo": photo.name, "vertex": vertex, "xy": xy.tolist()}]))
    model_file = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    args = ["reconstruct", str(photo), "-o", str(tmp_path / "out"), "--pins", str(pins), "--flame", str(model_file),
            "--no-preview", "--no-fbx", "--flat-texture"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "002_08.json").read_text())
    (pin,) = report["pins"]
    assert pin["photo"] == 0 and pin["residual_px"] < 1.5  # 8 px before the re-solve (1.1 px after)
    assert "pins" in report["timings_ms"]
    assert not np.allclose(report["shape"], auto.shape, atol=1e-3)  # the head itself changed
