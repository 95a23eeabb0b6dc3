"""The occluder segmentation network (training/occluders.py -> assets/occluder_seg.onnx -> texture/occlusion.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from facesmith.inference.images import load_photo
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import Reconstructor
from facesmith.inference.texture import occlusion


def test_train_resume_and_export_with_parity(synth_data, tmp_path):
    """A few steps on synth shards, resumed to more, exported: onnxruntime loads it and agrees with torch."""
    data, flame = synth_data
    run, onnx = tmp_path / "run", tmp_path / "seg.onnx"
    base = [sys.executable, "-m", "facesmith.training.occluders"]
    train = [*base, "train", "--data", data, "--val", data, "--out", run, "--batch", "4", "--every", "2",
             "--val-images", "8", "--flame", flame]  # fmt: skip
    for steps in (2, 4):
        out = subprocess.run([str(a) for a in [*train, "--steps", str(steps)]], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(0 <= r["val_not_skin_iou"] <= 1 for r in rows)
    assert "resumed at step 2" in out.stdout
    out = subprocess.run([str(a) for a in [*base, "export", run, "-o", onnx]], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["parity_max_abs"] < 1e-4
    net = occlusion.OccluderNet(onnx)
    prob, box = net.not_skin(np.zeros((96, 96, 3), np.uint8), np.random.default_rng(0).uniform(30, 60, (68, 2)))
    assert prob.shape == (net.size, net.size) and np.isfinite(prob).all() and box[2] > 0


def test_the_shipped_network_tells_skin_from_background(dev_model, face_photo):
    """On a real portrait's crop: the middle of the face is skin, the crop's corners (backdrop) are not."""
    net = occlusion.load_occluder_net()
    assert net is not None
    path = face_photo("002_03.jpg")
    with Reconstructor(DEFAULTS, dev_model) as rec:
        fit = rec.fit([path]).photos[0]
    photo = load_photo(path)
    prob, _ = net.not_skin(photo.rgb, fit.observed68_px / photo.scale)
    s = net.size
    assert prob[s // 2 - 8 : s // 2 + 8, s // 2 - 8 : s // 2 + 8].mean() < 0.1
    assert min(prob[:8, :8].mean(), prob[:8, -8:].mean()) > 0.9
