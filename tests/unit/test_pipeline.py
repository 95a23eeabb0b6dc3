"""Photo -> fit through the pipeline and the `facesmith fit` command on real portraits: the development model's
on ../shared's portraits, and the procedural head (tests/tiny_flame.py) on a bundled one wherever tests run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from facesmith.cli.main import main
from facesmith.inference.errors import NoFaceError
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import Reconstructor
from facesmith.inference.result import FitResult
from facesmith.inference.texture.albedo import TextureBaker

from ..conftest import FACES

# The development model's thresholds hold for it on the London set's portraits.
needs_faces = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")


@pytest.fixture(scope="module")
def reconstructor(dev_model):
    with Reconstructor(DEFAULTS, dev_model) as rec:
        yield rec


@pytest.fixture(scope="module")
def model_file(dev_model, tmp_path_factory):
    return save_model_npz(dev_model, tmp_path_factory.mktemp("model") / "dev_flame.npz")


@needs_faces
def test_fit_one_portrait(dev_model):
    with Reconstructor(dataclasses.replace(DEFAULTS, landmarks="mediapipe"), dev_model) as rec:
        result = rec.fit([FACES / "001_03.jpg"])
    photo = result.photos[0]
    assert photo.backend == "mediapipe" and photo.n_faces == 1
    assert photo.landmark_rms_px < 0.02 * photo.face_size_px  # within 2 % of the face size
    # The mesh's own 68 landmarks land on the detected ones (inner face; the jaw line is looser).
    model68 = photo.model_landmarks68_px
    detected = {n: p for n, p in zip(photo.landmark_names, photo.landmarks_px, strict=True)}
    jaw = np.array([detected[f"ibug:{i}"] for i in range(17)])
    assert np.median(np.linalg.norm(model68[:17] - jaw, axis=1)) < 0.04 * photo.face_size_px
    assert set(result.timings_ms) == {"load", "detect", "fit"}
    assert abs(np.degrees(photo.pose[0])).max() < 15  # a frontal portrait


@needs_faces
def test_result_round_trip(reconstructor, tmp_path):
    result = reconstructor.fit([FACES / "002_08.jpg"])
    npz, js = result.save(tmp_path / "r")
    loaded = FitResult.load(tmp_path / "r")
    np.testing.assert_allclose(loaded.shape, result.shape)
    np.testing.assert_allclose(loaded.photos[0].vertices, result.photos[0].vertices, atol=1e-6)
    assert loaded.photos[0].camera.to_dict() == result.photos[0].camera.to_dict()
    assert loaded.to_json() == json.loads(json.dumps(result.to_json()))
    # The detected 68 points whatever the backend (the bake's eye and mouth masks need them)
    assert result.photos[0].observed68_px.shape == (68, 2)
    np.testing.assert_allclose(loaded.photos[0].observed68_px, result.photos[0].observed68_px)


@needs_faces
def test_several_photos_skip_a_bad_one(reconstructor, bad_inputs):
    paths = [FACES / "003_03.jpg", bad_inputs / "noise_256.png", FACES / "003_08.jpg"]
    result = reconstructor.fit(paths)
    assert len(result.photos) == 2 and any("noise_256.png: no face detected" in w for w in result.warnings)


@needs_faces
def test_all_photos_bad_raises_the_first_error(reconstructor, bad_inputs):
    with pytest.raises(NoFaceError, match="no_face_coffee.png: no face detected"):
        reconstructor.fit([bad_inputs / "no_face_coffee.png"])


@needs_faces
def test_cli_fit_writes_json(model_file, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["fit", str(FACES / "001_03.jpg"), "--json", str(out), "--flame", str(model_file)]) == 0
    data = json.loads(out.read_text())
    for key in ("shape", "expression", "pose", "camera", "landmark_rms_px", "timings_ms", "model_landmarks68_px"):
        assert key in data
    assert len(data["model_landmarks68_px"]) == 68 and np.array(data["pose"]).shape == (5, 3)
    xs, ys = np.array(data["model_landmarks68_px"]).T
    assert 100 < xs.min() < xs.max() < 412 and 100 < ys.min() < ys.max() < 450  # on the face in the 512² photo
    assert (tmp_path / "out.npz").is_file()


@needs_faces
def test_cli_fit_no_face_is_one_line_error(model_file, bad_inputs, capsys):
    assert main(["fit", str(bad_inputs / "no_face_landscape.jpg"), "--flame", str(model_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"facesmith: error: {bad_inputs / 'no_face_landscape.jpg'}: no face detected"


@needs_faces
def test_cli_fit_dlib_backend(model_file, tmp_path):
    out = tmp_path / "d.json"
    assert (
        main(["fit", str(FACES / "010_03.jpg"), "--landmarks", "dlib", "--json", str(out), "--flame", str(model_file)])
        == 0
    )
    data = json.loads(out.read_text())
    assert data["photos"][0]["backend"] == "dlib" and data["landmark_rms_px"] < 6


@pytest.fixture(scope="module")
def procedural_reconstructor(procedural_model):
    with Reconstructor(dataclasses.replace(DEFAULTS, texture_size=512), procedural_model) as rec:
        assert rec.embedding is None  # assets/' learned table is for FLAME's mesh only
        yield rec


def test_procedural_head_from_a_real_photo(procedural_reconstructor, procedural_model, astronaut_photo, tmp_path):
    """Every stage on a real portrait. The procedural head is no face model: the fit must land on the face,
    not fit it as well as FLAME (its pitch trades with the random shape bases)."""
    head = procedural_reconstructor.run([astronaut_photo])
    photo = head.fit.photos[0]
    assert photo.backend == "mediapipe" and photo.n_faces == 1 and abs(np.degrees(photo.pose[0, 1])) < 10
    assert photo.landmark_rms_px < 0.06 * photo.face_size_px
    detected = dict(zip(photo.landmark_names, photo.landmarks_px, strict=True))
    jaw = np.array([detected[f"ibug:{i}"] for i in range(17)])
    assert np.median(np.linalg.norm(photo.model_landmarks68_px[:17] - jaw, axis=1)) < 0.05 * photo.face_size_px
    albedo, face = head.textures.albedo, TextureBaker(procedural_model, 512).sampled
    assert albedo.shape == (512, 512, 3) and np.isfinite(albedo).all() and 0 <= albedo.min() and albedo.max() <= 1
    assert np.median(albedo[face][:, 0]) > np.median(albedo[face][:, 2])  # skin from the photo: warm
    assert head.rig.basis.shape == (procedural_model.n_vertices, 3) and head.rig.camera.resolution == (512, 512)
    assert set(head.timings_ms) == {"load", "detect", "fit", "textures", "rig"}
    head.fit.save(tmp_path / "r")
    loaded = FitResult.load(tmp_path / "r")
    np.testing.assert_allclose(loaded.photos[0].vertices, photo.vertices, atol=1e-6)
    assert loaded.to_json() == json.loads(json.dumps(head.fit.to_json()))


def test_procedural_fit_skips_a_photo_without_a_face(procedural_reconstructor, astronaut_photo, bad_inputs):
    result = procedural_reconstructor.fit([bad_inputs / "noise_256.png", astronaut_photo])
    assert len(result.photos) == 1 and any("noise_256.png: no face detected" in w for w in result.warnings)
    with pytest.raises(NoFaceError, match="no_face_coffee.png: no face detected"):
        procedural_reconstructor.fit([bad_inputs / "no_face_coffee.png"])


def test_cli_fit_with_a_procedural_model(procedural_model, astronaut_photo, bad_inputs, tmp_path, capsys):
    model_file = save_model_npz(procedural_model, tmp_path / "procedural.npz")
    out = tmp_path / "out.json"
    assert main(["fit", str(astronaut_photo), "--json", str(out), "--flame", str(model_file)]) == 0
    data = json.loads(out.read_text())
    assert len(data["model_landmarks68_px"]) == 68 and np.array(data["pose"]).shape == (5, 3)
    xs, ys = np.array(data["model_landmarks68_px"]).T
    assert 100 < xs.min() < xs.max() < 412 and 100 < ys.min() < ys.max() < 450  # on the face in the 512² photo
    no_face = bad_inputs / "no_face_landscape.jpg"
    assert main(["fit", str(no_face), "--flame", str(model_file)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"facesmith: error: {no_face}: no face detected"
