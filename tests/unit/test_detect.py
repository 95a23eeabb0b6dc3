"""Landmark backends on real photos: MediaPipe (default), dlib fallback, face choice, no-face errors.

Photos come from ../shared, or without it from scikit-image's bundled samples (tests/photos.py)."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from facesmith.inference.errors import BackendError, NoFaceError
from facesmith.inference.images import load_photo
from facesmith.inference.landmarks.detect import (
    HOG_CROP_SCALE,
    HOG_OFFSET,
    MEDIAPIPE_TO_IBUG68,
    DlibBackend,
    FaceAlignmentBackend,
    FaceScorer,
    LandmarkDetector,
    combine_scores,
    leaves_image,
    make_backend,
)
from facesmith.inference.options import FACE_SCORE_MIN

from ..conftest import FACES, SHARED


@pytest.fixture(scope="module")
def detector():
    with LandmarkDetector("mediapipe", fallback="dlib") as det:
        yield det


def test_mediapipe_478_points_inside_the_face(detector, face_photo):
    det = detector.detect(load_photo(face_photo("001_03.jpg")))
    face = det.face
    assert det.backend == "mediapipe" and det.n_faces == 1 and face.points.shape == (478, 2)
    x0, y0, x1, y1 = face.box
    assert 100 < x1 - x0 < 300 and 100 < y1 - y0 < 300  # a 512² portrait
    ibug = face.ibug68()
    assert ibug[36, 0] < ibug[45, 0] and ibug[8, 1] > ibug[30, 1] > ibug[27, 1]  # eyes, chin below nose below brow
    right_iris, left_iris = face.iris_centres()
    assert right_iris[0] < left_iris[0]  # the subject's right eye is on the image's left


def test_dlib_and_mediapipe_agree_on_68_points(face_photo):
    photo = load_photo(face_photo("002_03.jpg"))
    dlib_face = DlibBackend().detect(photo.rgb)[0]
    with LandmarkDetector("mediapipe", None) as det:
        mp_face = det.detect(photo).face
    inner = np.r_[17:68]  # the jaw line differs by definition (silhouette vs surface points)
    err = np.linalg.norm(dlib_face.ibug68()[inner] - mp_face.ibug68()[inner], axis=1)
    assert np.median(err) < 0.05 * mp_face.size
    assert len(MEDIAPIPE_TO_IBUG68) == 68


def test_two_faces_largest_first_and_face_index(detector, bad_inputs):
    photo = load_photo(bad_inputs / "two_faces.jpg")
    first, second = detector.detect(photo, 0), detector.detect(photo, 1)
    assert first.n_faces == 2 and "2 faces found" in first.warnings[0]
    assert first.face.size >= second.face.size
    assert abs(first.face.box[0] - second.face.box[0]) > 300  # the two are different people, side by side
    with pytest.raises(NoFaceError, match="face index 2 asked for, but 2 face"):
        detector.detect(photo, 2)


@pytest.mark.parametrize("name", ["noise_256.png", "no_face_coffee.png", "no_face_landscape.jpg"])
def test_no_face_is_an_error_naming_the_file(detector, bad_inputs, name):
    with pytest.raises(NoFaceError, match="no face detected") as err:
        detector.detect(load_photo(bad_inputs / name))
    assert name in str(err.value)


@pytest.mark.parametrize("name", ["chelsea", "rocket", "colorwheel"])
def test_non_faces_the_backends_take_for_faces_are_refused_by_the_face_score(detector, tmp_path, name):
    """MediaPipe finds a face in the cat's eye, the rocket's tip and the colour wheel; none of them
    reaches the face score, while the portraits above and below keep theirs."""
    import skimage.data
    from PIL import Image

    path = tmp_path / f"{name}.png"
    Image.fromarray(np.asarray(getattr(skimage.data, name)())[..., :3]).save(path)
    assert detector.scored("mediapipe", load_photo(path).rgb)  # the backend alone calls it a face
    with pytest.raises(NoFaceError, match="no face detected"):
        detector.detect(load_photo(path))


def test_portrait_face_score_is_well_above_the_threshold(detector, face_photo):
    assert detector.detect(load_photo(face_photo("001_03.jpg"))).face.score > FACE_SCORE_MIN + 0.1


def test_face_score_needs_both_detectors():
    assert combine_scores(1.0, 1.0) == 1.0 and combine_scores(0.0, -1.0) == 0.0
    # bench/false_faces.py's highest non-face (a sunset crop) and a turned UTKFace face that the old crops lost
    assert combine_scores(0.769, -1.0) < FACE_SCORE_MIN < combine_scores(0.790, -0.413)
    assert combine_scores(0.0, 2.0) < FACE_SCORE_MIN  # HOG alone is not enough


def _cut_through_the_face(detector: LandmarkDetector, rgb: np.ndarray, depth: float) -> np.ndarray:
    """The photo with its left part gone: its edge now runs `depth` face widths into the face from the left."""
    x0, _, x1, _ = detector.backend_named("mediapipe").detect(rgb)[0].box
    return np.ascontiguousarray(rgb[:, int(x0 + depth * (x1 - x0)) :])


@pytest.mark.parametrize(
    ("photo", "backend", "depth"),
    [
        (FACES / "003_03.jpg", "mediapipe", 0.4),  # 0.616 from the crop alone
        (SHARED / "data" / "train_faces" / "26_0_0_20170113210126663.jpg.chip.jpg", "dlib", None),  # 0.569; 0.113
    ],
    ids=["portrait_cut_by_the_edge", "utkface_turned_head_cut_by_the_frame"],
)
def test_a_face_the_photo_edge_cuts_is_scored_on_the_whole_photo_too(detector, photo, backend, depth):
    """HOG's crop around a face that the photo's edge cuts through is padded grey past the edge, and that border across
    the head hides the face from HOG; its scan of the whole photo (as the dlib backend's) sees no edge there and finds
    the face. Both faces fell below FACE_SCORE_MIN with the crop alone (the second: bench/false_faces.py's one lost
    UTKFace crop, a turned head; the dense network doubts it too)."""
    if not photo.is_file():
        pytest.skip(f"needs {photo}")
    rgb = load_photo(photo).rgb
    if depth is not None:
        rgb = _cut_through_the_face(detector, rgb, depth)
    (face,) = detector.backend_named(backend).detect(rgb)
    assert leaves_image(rgb.shape, face.box, HOG_CROP_SCALE)
    scorer = FaceScorer()
    try:
        assert scorer.whole_photo_hog(rgb, face.box) > -HOG_OFFSET  # counts in the score
        assert scorer.score(rgb, face.box) >= FACE_SCORE_MIN
    finally:
        scorer.close()


def test_small_face_in_huge_image_is_found(detector, bad_inputs):
    photo = load_photo(bad_inputs / "huge_9000x9000.jpg")
    det = detector.detect(photo)
    centre = photo.to_original(det.face.ibug68()[30])
    assert np.allclose(centre, [4500, 4500], atol=300)  # the face was pasted in the centre


def stub_face_alignment(monkeypatch, found) -> list:
    """A stand-in `face_alignment` package whose network returns `found`; the calls it got, listed."""
    import importlib.machinery
    import types

    calls = []

    class FaceAlignment:
        def __init__(self, landmarks_type, device):
            calls.append((landmarks_type, device))

        def get_landmarks_from_image(self, rgb):
            calls.append(rgb.shape)
            return found

    module = types.ModuleType("face_alignment")
    module.__spec__ = importlib.machinery.ModuleSpec("face_alignment", None)
    module.FaceAlignment, module.LandmarksType = FaceAlignment, types.SimpleNamespace(TWO_D="2D")
    monkeypatch.setitem(sys.modules, "face_alignment", module)
    return calls


def test_face_alignment_not_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # as if absent, whether or not it is here
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackendError, match="face-alignment is not installed"):
        FaceAlignmentBackend()


def test_face_alignment_weights_are_never_downloaded(tmp_path, monkeypatch):
    """Installed without its weights: a readable error, and nothing fetched or created (not even its folder)."""
    calls = stub_face_alignment(monkeypatch, [])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackendError, match="weights .* not found"):
        FaceAlignmentBackend()
    assert not any(tmp_path.rglob("*")) and calls == []


def test_face_alignment_with_its_weights_gives_68_points(tmp_path, monkeypatch):
    points = np.random.default_rng(0).uniform(100, 200, (68, 3))  # x, y and the depth it may add
    calls = stub_face_alignment(monkeypatch, [points])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = tmp_path / "hub" / "checkpoints"
    weights.mkdir(parents=True)
    (weights / "2DFAN4-cd938726ad.zip").touch()
    (weights / "s3fd-619a316812.pth").touch()
    backend = FaceAlignmentBackend(device="cuda")
    (face,) = backend.detect(np.zeros((300, 300, 3), np.uint8))
    assert calls == [("2D", "cuda"), (300, 300, 3)]
    assert face.scheme == "ibug68" and np.array_equal(face.points, points[:, :2])
    assert np.allclose(face.box, (*points[:, :2].min(0), *points[:, :2].max(0)))
    stub_face_alignment(monkeypatch, None)  # no face: the package returns None
    assert FaceAlignmentBackend().detect(np.zeros((300, 300, 3), np.uint8)) == []


def test_unknown_backend():
    with pytest.raises(BackendError, match="unknown landmark backend 'openpose'"):
        make_backend("openpose")


@pytest.mark.parametrize(
    ("preferred", "available", "expected", "warned"),
    [
        ("mediapipe", ["mediapipe", "dlib"], "mediapipe", False),
        ("mediapipe", ["dlib"], "dlib", True),  # a Python 3.13 Blender: no MediaPipe wheel
        ("face_alignment", ["mediapipe", "dlib"], "mediapipe", True),
    ],
)
def test_choose_backend(preferred, available, expected, warned):
    from facesmith.inference.landmarks.detect import choose_backend

    chosen, warning = choose_backend(preferred, available)
    assert chosen == expected and (warning is not None) == warned


def test_choose_backend_with_none_installed():
    from facesmith.inference.landmarks.detect import choose_backend

    with pytest.raises(BackendError, match="no landmark backend is installed"):
        choose_backend("mediapipe", [])


def test_available_backends_here():
    from facesmith.inference.landmarks.dense import DENSE_MODEL
    from facesmith.inference.landmarks.detect import available_backends

    # the dense network (when shipped) first: it rides on the best detector
    expected = ["dense", "mediapipe", "dlib"] if DENSE_MODEL.is_file() else ["mediapipe", "dlib"]
    assert available_backends()[: len(expected)] == expected


def test_the_dense_network_confirms_only_faces_the_detectors_are_unsure_of(detector, face_photo):
    """A face scoring from FACE_SCORE_FLOOR up to the threshold is kept when the dense network sees a face there
    (its spread at most FACE_SPREAD_MAX); below the floor, or where the network doubts, it is not."""
    from facesmith.inference.options import FACE_SCORE_FLOOR

    rgb = load_photo(face_photo("001_03.jpg")).rgb
    face = detector.scored("mediapipe", rgb)[0]
    unsure = dataclasses.replace(face, score=(FACE_SCORE_FLOOR + FACE_SCORE_MIN) / 2)
    assert detector.confirms(rgb, unsure)  # a real face: the network is sure
    assert not detector.confirms(rgb, dataclasses.replace(face, score=FACE_SCORE_FLOOR - 0.01))
    blank = np.full_like(rgb, 128)
    assert not detector.confirms(blank, unsure)  # the same box on an empty image: the network doubts
