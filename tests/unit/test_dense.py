"""The dense-landmark backend (issue H): the landmark set and crop rule shared by training and inference,
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
