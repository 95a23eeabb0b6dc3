"""The dense-landmark backend: the landmark set and crop rule shared by training and inference,
headless training (resume, torchrun/DDP with 2 processes), ONNX export with parity, the basis check, and the
fit on dense landmarks. Training runs on the procedural FLAME (tests/tiny_flame.py), so no ../shared needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facesmith.inference.errors import BackendError
from facesmith.inference.fit.targets import vertex_surface_points
from facesmith.inference.flame.forward import surface_points
from facesmith.inference.landmarks import dense
from facesmith.inference.landmarks.dense import (
    DENSE_MODEL,
    DenseLandmarker,
    choose_providers,
    crop_box,
    crop_image,
    from_crop_units,
    select_vertices,
    to_crop_units,
)

pytest.importorskip("torch")
FACESMITH = Path(sys.executable).with_name("facesmith")
TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_dense_set_has_the_68_first_no_eyeballs_no_repeats(procedural_model) -> None:
    ids, rows = select_vertices(procedural_model, n_face=100, n_rest=20)
    assert len(set(ids.tolist())) == len(ids)
    assert (rows == np.arange(68)).all() or len(set(rows.tolist())) < 68  # repeats only where 68 share a vertex
    np.testing.assert_array_equal(ids[rows], dense.ibug_vertices(procedural_model))
    eyeballs = procedural_model.lbs_weights[:, 3:5].sum(axis=1) > 0.5
    assert not eyeballs[ids[68:]].any()


def test_crop_maps_a_pixel_to_its_crop_units() -> None:
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[120, 250] = 255  # (x 250, y 120)
    box = crop_box(np.array([[200.0, 100.0], [280.0, 180.0]]), 1.5)
    crop = crop_image(rgb, box, 64)
    y, x = np.unravel_index(np.argmax(crop[0]), crop[0].shape)
    units = to_crop_units(np.array([[250.0, 120.0]]), box)[0]
    assert np.allclose([x, y], (units + 1) * 32 - 0.5, atol=1.0)
    np.testing.assert_allclose(from_crop_units(units[None], box)[0], [250, 120])


def test_providers_cuda_absent_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="CUDA was asked for"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_vertex_surface_points_sit_on_their_vertices(procedural_model) -> None:
    ids = np.array([0, 5, 77, procedural_model.n_vertices - 1])
    ids = ids[np.isin(ids, procedural_model.faces)]
    tri, bary = vertex_surface_points(np.asarray(procedural_model.faces), ids)
    v = np.asarray(procedural_model.v_template)[None]
    np.testing.assert_allclose(surface_points(v, procedural_model.faces, tri, bary)[0], v[0, ids])


def _config(path: Path, data: Path, steps: int, **train) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in train.items())
    path.write_text(
        f'[data]\ntrain = "{data}"\nval = "{data}"\nval_images = 16\nworkers = 0\n'
        "[model]\ninput_size = 64\nwidths = [8, 16, 16, 16, 16]\nhidden = 32\n"
        f"[train]\nsteps = {steps}\nbatch = 4\nwarmup = 2\nlog_every = 5\nval_every = 10\ncheckpoint_every = 10\n{extra}"
    )
    return path


def _run(args: list, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_train_resume_export_parity_and_basis_check(synth_data, tmp_path, dev_or_none) -> None:
    data, flame = synth_data
    run = tmp_path / "run"
    first = _run(
        [FACESMITH, "train", "--config", _config(tmp_path / "a.toml", data, 20), "--out", run, "--flame", flame]
    )
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [5, 10, 15, 20]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    assert any("val_nme_all" in r for r in rows) and (run / "loss.png").stat().st_size > 1000
    assert "ETA" in first.stderr  # the progress bar
    # Same config, more steps: resumes from the checkpoint instead of starting over.
    more = _run(
        [FACESMITH, "train", "--config", _config(tmp_path / "a.toml", data, 25), "--out", run, "--flame", flame]
    )
    assert more.returncode == 0 and "resuming" in more.stdout + more.stderr, more.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r][-2:] == [20, 25]
    # A compact checkpoint (float16 weights, no optimizer state: what a session commits) resumes the same run.
    from facesmith.training.dense.train import compact_checkpoint

    compact_checkpoint(run / "checkpoint.pt", tmp_path / "compact" / "checkpoint.pt")
    assert (tmp_path / "compact" / "checkpoint.pt").stat().st_size < 0.5 * (run / "checkpoint.pt").stat().st_size
    again = _run([FACESMITH, "train", "--config", _config(tmp_path / "a.toml", data, 30), "--out", tmp_path / "compact",
                  "--flame", flame])  # fmt: skip
    assert again.returncode == 0 and "resuming" in again.stdout + again.stderr, again.stderr
    rows = [json.loads(line) for line in (tmp_path / "compact" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [30] and all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    # Another config in the same folder is refused.
    other = _run([FACESMITH, "train", "--config", _config(tmp_path / "b.toml", data, 25, lr=0.1), "--out", run,
                  "--flame", flame])  # fmt: skip
    assert other.returncode != 0 and "another config" in other.stderr

    onnx_path = tmp_path / "dense.onnx"
    exported = _run([FACESMITH, "export-onnx", run, "-o", onnx_path])
    assert exported.returncode == 0, exported.stderr
    diff = float(exported.stdout.split("max abs difference")[1].split()[0])
    assert diff < 1e-4
    spec = DenseLandmarker(onnx_path, device="cpu").spec
    assert "25 steps" in spec.trained_on and spec.input_size == 64

    from facesmith.inference.flame.io import load_flame

    net = DenseLandmarker(onnx_path, device="cpu")
    net.check_model(load_flame(flame))  # the basis it was trained for
    if dev_or_none is not None:
        with pytest.raises(BackendError, match="FLAME"):
            net.check_model(dev_or_none)
    rgb = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    pred = net.predict(rgb, np.random.default_rng(2).random((68, 2)) * 60 + 40)
    assert pred.points.shape == (len(spec.vertex_ids), 2) and (pred.sigma > 0).all()


@pytest.fixture
def dev_or_none(request):
    try:
        return request.getfixturevalue("dev_model")
    except pytest.skip.Exception:
        return None


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed")
def test_torchrun_two_processes_ddp(synth_data, tmp_path) -> None:
    data, flame = synth_data
    run = tmp_path / "ddp"
    out = _run([TORCHRUN, "--standalone", "--nproc_per_node", "2", FACESMITH, "train",
                "--config", _config(tmp_path / "d.toml", data, 10), "--out", run, "--flame", flame])  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    import torch

    ck = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 10
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [5, 10]  # rank 0 writes, once per log step


@pytest.mark.skipif(not DENSE_MODEL.is_file(), reason="no shipped dense network (assets/dense_landmarks.onnx)")
def test_shipped_network_matches_the_development_model(dev_model) -> None:
    DenseLandmarker(DENSE_MODEL, device="cpu").check_model(dev_model)


@pytest.mark.skipif(not DENSE_MODEL.is_file(), reason="no shipped dense network (assets/dense_landmarks.onnx)")
def test_fit_uses_dense_landmarks_by_default(dev_model, face_photo) -> None:
    from facesmith.inference.options import DEFAULTS
    from facesmith.inference.pipeline import Reconstructor

    with Reconstructor(DEFAULTS, dev_model) as rec:
        assert rec.backend == "dense"
        result = rec.fit([face_photo("002_03.jpg")])
    photo = result.photos[0]
    assert photo.backend == "dense"
    assert photo.landmark_names[0].startswith("dense:") and len(photo.landmark_names) > 400
    # the network's 68 iBUG rows agree with the fitted head's own 68 landmarks to a few % of the face
    assert np.median(photo.residuals_px) < 0.05 * photo.face_size_px


def test_dense_asked_for_with_another_basis_is_refused_auto_falls_back(procedural_model) -> None:
    if not DENSE_MODEL.is_file():
        pytest.skip("no shipped dense network")
    from facesmith.inference.landmarks.detect import available_backends
    from facesmith.inference.options import DEFAULTS
    from facesmith.inference.pipeline import Reconstructor

    if "dense" not in available_backends():
        pytest.skip("no detector for the dense crop")
    import dataclasses

    with pytest.raises(BackendError, match="another FLAME|vertices"):
        Reconstructor(dataclasses.replace(DEFAULTS, landmarks="dense"), procedural_model)
    with Reconstructor(DEFAULTS, procedural_model) as rec:
        assert rec.backend != "dense"
        assert any("dense landmarks not used" in n for n in rec.notes)


def test_ctrl_c_stops_training_with_a_checkpoint_and_it_resumes(synth_data, tmp_path) -> None:
    import signal
    import time

    import torch

    data, flame = synth_data
    run = tmp_path / "stopped"
    config = _config(tmp_path / "s.toml", data, 100000)
    proc = subprocess.Popen([str(FACESMITH), "train", "--config", str(config), "--out", str(run), "--flame", str(flame)],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # the progress bar: training is under way
        if "ETA" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    step = torch.load(run / "checkpoint.pt", weights_only=False)["step"]
    assert 0 < step < 100000
    again = _run([FACESMITH, "train", "--config", _config(tmp_path / "s.toml", data, step + 5), "--out", run,
                  "--flame", flame])  # fmt: skip
    assert again.returncode == 0 and f"resuming {run} at step {step}" in again.stdout + again.stderr


@pytest.mark.skipif(not DENSE_MODEL.is_file(), reason="no shipped dense network (assets/dense_landmarks.onnx)")
def test_cuda_asked_for_without_cuda_fails_in_one_line(face_photo, dev_model) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    res = _run([FACESMITH, "fit", face_photo("002_03.jpg"), "--device", "cuda"])
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "CUDA was asked for" in errors[0] and "setup.sh --gpu" in errors[0]


def _symmetric_set(n_side: int = 30, n_mid: int = 6, seed: int = 0) -> np.ndarray:
    """Points on both sides of x = 0 (each with its mirror image) and on the midline, shuffled."""
    rng = np.random.default_rng(seed)
    side = rng.normal(0, 0.05, (n_side, 3))
    side[:, 0] = np.abs(side[:, 0]) + 0.01
    mid = rng.normal(0, 0.05, (n_mid, 3))
    mid[:, 0] = 0.0
    pts = np.concatenate([side, side * [-1, 1, 1], mid])
    return pts[rng.permutation(len(pts))]


def test_mirror_map_is_the_left_right_permutation_and_an_involution_on_a_symmetric_set() -> None:
    pts = _symmetric_set()
    w = dense.mirror_weights(pts, np.arange(len(pts)))
    assert set(np.unique(w)) <= {0.0, 1.0} and (w.sum(0) == 1).all() and (w.sum(1) == 1).all()  # a permutation
    np.testing.assert_array_equal(w @ w, np.eye(len(pts)))  # an involution
    np.testing.assert_allclose(w @ pts, pts * [-1, 1, 1], atol=1e-7)  # each point goes to its mirror image
    mid = np.flatnonzero(pts[:, 0] == 0)
    np.testing.assert_array_equal(w[mid, mid], 1.0)  # the midline maps to itself


def test_mirror_map_on_flame_interpolates_the_mirror_positions(flame_model) -> None:
    ids, _ = select_vertices(flame_model)  # the shipped set's size (a sparser one interpolates less well)
    t = np.asarray(flame_model.v_template, np.float64)[ids]
    w = dense.mirror_weights(flame_model.v_template, ids).astype(np.float64)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    err = np.linalg.norm(w @ t - t * [-1, 1, 1], axis=1)  # an affine field is reproduced (up to the ridge)
    assert np.median(err) < 1e-4 and err.max() < 3e-3, (np.median(err), err.max())
    back = np.linalg.norm(w @ (w @ t) - t, axis=1)  # an involution up to the interpolation
    assert np.median(back) < 5e-4 and back.max() < 5e-3, (np.median(back), back.max())


class _StubNet(DenseLandmarker):
    """A DenseLandmarker whose 'network' is a fixed random, not symmetric, function of the crop."""

    def __init__(self, points: np.ndarray, mirror: bool) -> None:  # no .onnx: run is replaced
        self.mirror, self.mirror_map = mirror, dense.mirror_weights(points, np.arange(len(points)))
        rng = np.random.default_rng(3)
        self.proj = rng.normal(0, 0.02, (len(points) * 3, 3 * 16 * 16))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = np.tanh(batch.reshape(len(batch), -1) @ self.proj.T).reshape(len(batch), -1, 3)
        return out[..., :2].astype(np.float32), np.exp(out[..., 2] - 3).astype(np.float32), np.zeros((len(batch), 0))


def test_mirrored_input_gives_the_mirrored_output() -> None:
    pts = _symmetric_set()
    crop = np.random.default_rng(4).random((3, 16, 16)).astype(np.float32)
    flipped = np.ascontiguousarray(crop[:, :, ::-1])
    net = _StubNet(pts, mirror=True)
    p, s, _ = net.run_crop(crop)
    q, t, _ = net.run_crop(flipped)
    # The flipped crop's landmark i is where the mirror of landmark perm(i) is, x negated.
    np.testing.assert_allclose(q, net.mirror_map @ (p * [-1, 1]), atol=1e-6)
    np.testing.assert_allclose(t, net.mirror_map @ s, atol=1e-7)
    plain = _StubNet(pts, mirror=False)  # without mirroring the stub is not equivariant: the test has teeth
    p0, _, _ = plain.run_crop(crop)
    q0, _, _ = plain.run_crop(flipped)
    assert np.abs(q0 - plain.mirror_map @ (p0 * [-1, 1])).max() > 0.05
    # and mirroring is the average of the direct and the carried-over flipped prediction
    np.testing.assert_allclose(p, (p0 + net.mirror_map @ (q0 * [-1, 1])) / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("step", "steps", "want"),
    [
        (0, 100, 1e-3 / 10),
        (9, 100, 1e-3),
        (10, 100, 1e-3),
        (30, 100, 1e-3 / np.sqrt(2)),
        (30, 10000, 1e-3 / np.sqrt(2)),
    ],
)
def test_rsqrt_schedule_does_not_depend_on_the_step_count(step, steps, want) -> None:
    from facesmith.training.dense.train import TrainConfig, learning_rate

    cfg = TrainConfig(steps=steps, lr=1e-3, warmup=10, schedule="rsqrt", decay_steps=20)
    assert learning_rate(step, cfg) == pytest.approx(want)


def test_heatmap_head_starts_from_an_exported_backbone_trains_and_exports(synth_data, tmp_path) -> None:
    data, flame = synth_data
    fc = tmp_path / "fc"
    assert _run([FACESMITH, "train", "--config", _config(tmp_path / "fc.toml", data, 10), "--out", fc,
                 "--flame", flame]).returncode == 0  # fmt: skip
    fc_onnx = tmp_path / "fc.onnx"
    assert _run([FACESMITH, "export-onnx", fc, "-o", fc_onnx]).returncode == 0
    config = _config(tmp_path / "hm.toml", data, 10, schedule='"rsqrt"', decay_steps=5, ema=0.9, loss='"distance"',
                     heatmap_weight=0.1)  # fmt: skip
    text = config.read_text().replace("hidden = 32\n", f'head = "heatmap"\ndecoder = 16\ninit = "{fc_onnx}"\n')
    config.write_text(text.replace("workers = 0\n", "workers = 0\ngrowing = true\n"))
    run = tmp_path / "hm"
    res = _run([FACESMITH, "train", "--config", config, "--out", run, "--flame", flame])
    assert res.returncode == 0 and "started from" in res.stdout + res.stderr, res.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r) and any("val_nme_face" in r for r in rows)
    onnx_path = tmp_path / "hm.onnx"
    exported = _run([FACESMITH, "export-onnx", run, "-o", onnx_path])
    assert exported.returncode == 0, exported.stderr
    from facesmith.inference.flame.io import load_flame

    net = DenseLandmarker(onnx_path, device="cpu")
    net.check_model(load_flame(flame))
    rgb = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    pred = net.predict(rgb, np.random.default_rng(2).random((68, 2)) * 60 + 40)
    assert pred.points.shape == (len(net.spec.vertex_ids), 2) and (pred.sigma > 0).all()


def test_init_from_onnx_reproduces_the_exported_network(synth_data, tmp_path) -> None:
    import torch

    from facesmith.training.dense.export import load_run
    from facesmith.training.dense.train import init_from_onnx

    data, flame = synth_data
    run = tmp_path / "run"
    assert _run([FACESMITH, "train", "--config", _config(tmp_path / "a.toml", data, 10), "--out", run,
                 "--flame", flame]).returncode == 0  # fmt: skip
    assert _run([FACESMITH, "export-onnx", run, "-o", tmp_path / "a.onnx"]).returncode == 0
    trained, _, _ = load_run(run)
    fresh, _, _ = load_run(run)
    for p in fresh.parameters():
        torch.nn.init.normal_(p)
    crops = torch.rand(16, 3, 64, 64)
    init_from_onnx(fresh, tmp_path / "a.onnx", crops)
    fresh.eval()
    with torch.no_grad():
        for a, b in zip(trained(crops), fresh(crops), strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_a_stopped_synth_resumes_keeping_its_finished_shards(procedural_model, tmp_path) -> None:
    from facesmith.training.synth.engine import Assets, Engine
    from facesmith.training.synth.shards import generate, shard_path

    engine = Engine(procedural_model, Assets(np.full((1, 8, 8, 3), 180, np.uint8), None, ()), 48)
    out = tmp_path / "s"
    generate(engine, 6, 5, out, workers=1, shard_size=2, log=lambda s: None)
    first = {k: shard_path(out, k).stat().st_mtime_ns for k in range(3)}
    shard_path(out, 1).write_bytes(b"truncated")  # as a run killed while writing would leave (tmp aside)
    (out / "manifest.json").unlink()
    lines = []
    generate(engine, 8, 5, out, workers=1, shard_size=2, log=lines.append)  # resumed and grown
    assert "resuming: 2 of 4 shards already there" in lines
    assert shard_path(out, 0).stat().st_mtime_ns == first[0] and shard_path(out, 2).stat().st_mtime_ns == first[2]
    with np.load(shard_path(out, 1)) as z:
        np.testing.assert_array_equal(z["index"], [2, 3])
    other = tmp_path / "other"  # another seed's shards are not taken for this one's
    generate(engine, 2, 6, other, workers=1, shard_size=2, log=lambda s: None)
    lines = []
    generate(engine, 2, 5, other, workers=1, shard_size=2, log=lines.append)
    assert not any("resuming" in s for s in lines)


def test_session_view_paints_eyes_and_the_mouths_inside(dev_model):
    """bench/track.py's truth renders: irises and a dark mouth inside whatever the texture holds there (a white
    texture here: without painting, eyes and the open mouth come out white)."""
    from facesmith.training.dense.views import session_light, session_view

    white = np.full((64, 64, 3), 255, np.uint8)
    light = session_light(np.random.default_rng(0))
    pose = np.zeros((5, 3))
    pose[2, 0] = 0.35  # jaw open
    plain = session_view(dev_model, np.zeros(dev_model.n_shape), 0.0, white, light, 192, pose=pose)
    painted = session_view(dev_model, np.zeros(dev_model.n_shape), 0.0, white, light, 192, pose=pose, painted=True)
    changed = np.abs(painted.astype(int) - plain.astype(int)).sum(-1) > 60
    rows = np.nonzero(changed.any(1))[0]
    assert changed.sum() > 100  # eyes and mouth
    assert rows.min() < 192 * 0.5 < rows.max()  # above the face's middle (eyes) and below it (mouth)
    reddish = painted[changed].astype(int)
    assert (reddish[:, 0] > reddish[:, 2]).mean() > 0.3  # the mouth's inside is dark red, not grey


def test_a_spiked_validation_goes_back_to_the_best_weights_with_half_the_rate(
    synth_data, procedural_model, tmp_path, monkeypatch
) -> None:
    import torch

    from facesmith.training.dense import train as train_mod

    data, _ = synth_data
    # Validation errors as a spike shows them: better, better, 2 × the best (back to step 20), recovered.
    errors = iter([0.10, 0.08, 0.16, 0.07])
    monkeypatch.setattr(train_mod, "validate", lambda *a, **k: {"val_nme_all": next(errors), "val_nme_face": 0.0,
                                                                 "val_nme_68": 0.0, "val_beta_rmse": 0.0})  # fmt: skip
    cfg = train_mod.load_config(_config(tmp_path / "a.toml", data, 40))
    run = tmp_path / "run"
    train_mod.train(cfg, run, procedural_model, log=lambda s: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in rows if "rollback_to" in r] == [{"step": 30, "rollback_to": 20, "lr_scale": 0.5}]
    lrs = {r["step"]: r["lr"] for r in rows if "lr" in r}
    assert lrs[35] == pytest.approx(0.5 * train_mod.learning_rate(34, cfg.train))
    best, last = (train_mod.load_checkpoint(run / name) for name in (train_mod.BEST, train_mod.CHECKPOINT))
    assert best["step"] == 40 and best["last_val"]["val_nme_all"] == 0.07 and last["lr_scale"] == 0.5
    # The rate scale survives a resume.
    net = train_mod.build_net(train_mod.make_spec(procedural_model, cfg), cfg)
    opt = torch.optim.AdamW(net.parameters())
    spec = train_mod.make_spec(procedural_model, cfg)
    assert train_mod.resume(run / train_mod.CHECKPOINT, net, opt, cfg, spec)[2] == 0.5
