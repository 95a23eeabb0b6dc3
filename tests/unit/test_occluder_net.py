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


def _cutouts() -> dict:
    """Two 64² people cut-outs: dark hair above the eyes (y 24), skin below, transparent elsewhere."""
    rgba = np.zeros((2, 64, 64, 4), np.uint8)
    rgba[:, 4:20, 12:52] = (40, 30, 25, 255)  # hair
    rgba[:, 20:40, 16:48] = (220, 170, 150, 255)  # forehead skin: never pasted as hair
    eyes = np.array([[[40.0, 24.0], [24.0, 24.0]]] * 2, np.float32)  # image right eye first, as the cache has them
    return {"rgba": rgba, "eyes": eyes, "hair": np.full((2, 3), [40 / 255, 30 / 255, 25 / 255], np.float32)}


def test_a_pasted_fringe_is_hair_only_and_labelled():
    from facesmith.training.occluders import hair_fringe

    crop, target = np.full((3, 128, 128), 0.6, np.float32), np.zeros((128, 128), np.float32)
    before = crop.copy()
    hair_fringe(crop, target, np.array([[48.0, 70.0], [80.0, 70.0]]), _cutouts(), np.random.default_rng(0))
    import cv2

    changed = np.abs(crop - before).max(axis=0) > 0.2  # pasted at more than about half
    near = cv2.dilate((target > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the soft edge
    assert target.sum() > 100 and not (changed & ~near).any()
    assert crop[:, target > 0.5].mean() < 0.3  # dark hair, not the cut-out's skin
    assert target[75:, :].sum() == 0  # nothing below the eyes


def test_a_pasted_hand_is_the_most_contrasting_skin_and_labelled():
    """skin_hand pastes a palm-and-fingers shape of the other skin most unlike the crop's, labelled not-skin;
    cheek_patch takes only all-skin regions of a render."""
    from facesmith.training.occluders import cheek_patch, skin_hand

    crop, target = np.full((3, 128, 128), 0.25, np.float32), np.zeros((128, 128), np.float32)  # dark skin
    target[:20] = 1  # background above the head
    skins = [np.full((12, 16, 3), 0.3, np.float32), np.full((12, 16, 3), 0.8, np.float32)]
    before = target.copy()
    for seed in range(5):
        skin_hand(crop, target, np.array([[48.0, 60.0], [80.0, 60.0]]), skins, np.random.default_rng(seed))
    pasted = (target > 0.5) & (before < 0.5)
    assert pasted.sum() > 500
    assert crop[:, pasted].mean() > 0.6  # the light skin, not the near one (shading ramps 0.75-1.2)

    image = np.zeros((100, 100, 3), np.uint8)
    segment = np.ones((100, 100), np.uint8)
    points = np.zeros((68, 2))
    points[36], points[39], points[40:42], points[33] = (30, 40), (45, 40), (30, 44), (50, 70)
    assert cheek_patch(image, segment, points).shape == (70 - 46, 15, 3)
    segment[50, 35] = 3  # a strand of hair: not a hand's skin
    segment[50:60, 30:40] = 3
    assert cheek_patch(image, segment, points) is None


def test_fine_tune_with_fringes(synth_data, tmp_path, monkeypatch):
    """--init from a run, --cutouts and --hands train and write their metrics, and each takes effect: the tuned
    run starts from the first run's weights (at learning rate 0 it keeps them), fringes and hands are pasted."""
    import torch

    from facesmith.training import occluders

    data, flame = synth_data
    path = tmp_path / "cut.npz"
    np.savez(path, **_cutouts())
    base = ["train", "--data", data, "--val", data, "--batch", "4", "--every", "2", "--val-images", "8",
            "--flame", flame, "--steps", "2"]  # fmt: skip
    occluders.main([str(a) for a in [*base, "--out", tmp_path / "a", "--seed", "1"]])
    pasted = []

    def counted(name):
        paste = getattr(occluders, name)
        return lambda *args: pasted.append(name) or paste(*args)

    for name in ("hair_fringe", "skin_hand"):  # count the pastes; every crop gets both
        monkeypatch.setattr(occluders, name, counted(name))
    monkeypatch.setattr(occluders, "FRINGE_SHARE", 1.0)
    monkeypatch.setattr(occluders, "HAND_SHARE", 1.0)
    tuned = [*base, "--out", tmp_path / "b", "--init", tmp_path / "a", "--cutouts", path, "--hands", "--lr", "0"]
    occluders.main([str(a) for a in tuned])
    assert json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert pasted.count("hair_fringe") >= 8 and pasted.count("skin_hand") >= 8  # 2 steps of 4 crops
    first, second = (torch.load(tmp_path / r / occluders.CHECKPOINT, weights_only=False)["model"] for r in "ab")
    weights = [k for k in first if "running_" not in k and "num_batches" not in k]  # not batch norm's statistics
    assert weights and all(torch.equal(first[k], second[k]) for k in weights)


def test_a_fine_tune_starts_from_the_shipped_onnx_unchanged():
    """load_onnx_weights: the shipped network's folded convolutions back in the torch network give the same output
    in eval mode, and in train mode on the batch its norms were measured on nearly so (they normalise like trained
    ones, so a fine-tune starts from the shipped network, not from a shifted one)."""
    import onnxruntime as ort
    import torch

    from facesmith.training.occluders import SegNet, load_onnx_weights

    session = ort.InferenceSession(str(occlusion.SEG_MODEL), providers=["CPUExecutionProvider"])
    crops = torch.from_numpy(np.random.default_rng(0).random((8, 3, 128, 128), np.float32))
    want = session.run(None, {"image": crops.numpy()})[0]
    net = SegNet()
    load_onnx_weights(net, occlusion.SEG_MODEL, crops)
    assert net.training
    with torch.no_grad():
        in_train = net(crops).numpy()
        net.eval()
        in_eval = net(crops).numpy()
    assert np.abs(in_eval - want).max() < 1e-3 * np.abs(want).max()  # float32 rounding of the unfolded norms
    assert np.abs(in_train - want).max() < 0.05 * np.abs(want).max()
