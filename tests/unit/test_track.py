"""Footage -> per-frame FLAME parameters (inference/track.py): smoothing, bridging, reading footage, tracking."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from facesmith.inference.track import FootageError, TrackOptions, bridge, footage_frames, savitzky_golay


def test_savitzky_golay_keeps_quadratics_and_removes_noise():
    t = np.linspace(-1, 1, 60)[:, None]
    curve = 0.5 + t - 2 * t**2
    np.testing.assert_allclose(savitzky_golay(curve, 5)[2:-2], curve[2:-2], atol=1e-12)  # no lag, no bias
    noisy = curve + np.random.default_rng(0).normal(0, 0.05, curve.shape)
    assert np.abs(savitzky_golay(noisy, 7) - curve).mean() < 0.7 * np.abs(noisy - curve).mean()
    np.testing.assert_array_equal(savitzky_golay(noisy, 1), noisy)
    assert savitzky_golay(noisy[:2], 5).shape == (2, 1)


def test_bridge_interpolates_lost_frames():
    values = np.array([[0.0], [9.0], [9.0], [3.0], [9.0]])
    found = np.array([True, False, False, True, False])
    np.testing.assert_allclose(bridge(values, found)[:, 0], [0, 1, 2, 3, 3])


def test_footage_errors_and_a_folder_of_frames(tmp_path):
    from PIL import Image

    with pytest.raises(FootageError, match="no such file"):
        footage_frames(tmp_path / "nope.mp4", TrackOptions())
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(FootageError, match="not a video"):
        footage_frames(text, TrackOptions())
    with pytest.raises(FootageError, match="no frames"):
        footage_frames(tmp_path, TrackOptions())
    for k in range(5):
        Image.fromarray(np.full((48, 40, 3), 50 * k, np.uint8)).save(tmp_path / f"f{k:03d}.png")
    fps, count, frames = footage_frames(tmp_path, TrackOptions(start=1, stride=2, fps=12.0))
    got = list(frames)
    assert fps == 12.0 and count == 2 and [n for n, _ in got] == [1, 3] and got[1][1][0, 0, 0] == 150


def test_a_video_file_is_read_in_range(tmp_path):
    import cv2

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (64, 48))
    for k in range(12):
        writer.write(np.full((48, 64, 3), 20 * k, np.uint8))
    writer.release()
    fps, count, frames = footage_frames(path, TrackOptions(start=2, end=10, stride=3))
    got = list(frames)
    assert fps == pytest.approx(20.0) and count == 3 and [n for n, _ in got] == [2, 5, 8]
    assert abs(int(got[1][1].mean()) - 100) < 8  # frame 5 (lossy codec)


def test_blinks_from_eye_openness():
    from facesmith.inference.track import BLINK_CLOSED, blinks, eye_openness

    ibug = np.zeros((68, 2))
    for a, x0 in ((36, 0.0), (42, 10.0)):  # two eyes 4 wide, lids 1 apart
        ibug[a : a + 6] = [[x0, 0], [x0 + 1, -0.5], [x0 + 3, -0.5], [x0 + 4, 0], [x0 + 3, 0.5], [x0 + 1, 0.5]]
    np.testing.assert_allclose(eye_openness(ibug), [0.25, 0.25])
    openness = np.full((20, 2), 0.3)
    openness[8:11, 0] = [0.2, 0.3 * BLINK_CLOSED, 0.2]  # the subject's left eye blinks
    openness[15] = np.nan  # no detector face
    found = np.ones(20, bool)
    found[15] = False
    lids = blinks(openness, found, 1)
    assert lids[9, 0] == pytest.approx(1.0) and lids[:, 1].max() == 0.0 and lids[15].max() == 0.0
    assert 0 < lids[8, 0] < 1 and lids[:8, 0].max() == 0.0


def test_a_gap_without_a_face_is_lost_not_bridged(dev_model):
    """Frames with no face — a cutaway to a non-face image (the detector finds none; the network on the last crop
    doubts a face is there) and the face blurred past recognition (the network doubts it on any crop) — are listed
    as lost and interpolated, not tracked; the face is found again at once."""
    import skimage.data

    from facesmith.inference.landmarks.detect import LandmarkDetector, available_backends, crop_detector
    from facesmith.inference.options import FitOptions
    from facesmith.inference.track import track
    from facesmith.training.dense.views import session_light, session_view

    if "dense" not in available_backends():
        pytest.skip("the dense network needs a detector and onnxruntime")
    rng = np.random.default_rng(1)
    beta, light = rng.normal(size=dev_model.n_shape) * 0.5, session_light(rng)
    texture = np.full((64, 64, 3), (200, 150, 125), np.uint8)
    face = session_view(dev_model, beta, 10.0, texture, light, 384, pose=None, painted=True)
    cutaway = cv2.resize(skimage.data.coffee(), (384, 384))
    blurred = np.ascontiguousarray(cv2.GaussianBlur(face, (0, 0), 20))
    frames = [face] * 4 + [cutaway] * 3 + [blurred] * 2 + [face] * 4
    detector = LandmarkDetector("dense", crop_detector(available_backends()))
    try:
        tracked = track(dev_model, beta, iter(enumerate(frames)), len(frames), 25.0, detector, FitOptions(),
                        dataclasses.replace(TrackOptions(), smooth_frames=1))  # fmt: skip
    finally:
        detector.close()
    assert tracked.lost == [4, 5, 6, 7, 8]
    assert (
        tracked.lost_message("take.mp4")
        == "take.mp4: no face in 5 frame(s), 4-8: interpolated between their neighbours"
    )
    assert np.allclose(tracked.pose[9], tracked.pose[3], atol=0.02)  # the same face: back where it was


def test_frame_ranges():
    from facesmith.inference.track import frame_ranges

    assert frame_ranges([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12" and frame_ranges([7]) == "7" and frame_ranges([]) == ""


def test_take_registration_moves_the_head_instead_of_the_camera():
    """Each frame's fitted camera -> one camera for the take and the head's translation: the translated head seen by
    the take's camera is exactly what each frame's camera saw (perspective); an orthographic camera's scale is held
    at the take's median and its image-plane offset becomes the translation."""
    from facesmith.inference.camera import Camera
    from facesmith.inference.track import take_registration

    rng = np.random.default_rng(2)
    points = rng.normal(0, 0.08, (30, 3))
    cams = [Camera("perspective", np.array([0.01, -0.02, 0.6]) + rng.normal(0, [0.03, 0.03, 0.05]), 800.0, (320, 240))
            for _ in range(7)]  # fmt: skip
    found = np.ones(7, bool)
    found[3] = False  # a lost frame's camera does not pick the take's
    camera, translation = take_registration(cams, found)
    assert camera.focal == 800.0 and camera.centre == (320, 240)
    np.testing.assert_allclose(camera.params, np.median([c.params for k, c in enumerate(cams) if found[k]], axis=0))
    for cam, t in zip(cams, translation, strict=True):
        np.testing.assert_allclose(camera.project(points + t), cam.project(points), atol=1e-9)
    ortho = [Camera("orthographic", np.array([1000.0, 300.0 + 10 * k, 200.0 - 5 * k])) for k in range(3)]
    camera, translation = take_registration(ortho, np.ones(3, bool))
    assert camera.params[0] == 1000.0 and (translation[:, 2] == 0).all()
    for cam, t in zip(ortho, translation, strict=True):
        np.testing.assert_allclose(camera.project(points + t), cam.project(points), atol=1e-9)


def test_a_moving_face_is_followed_by_the_head_not_turned_after(dev_model):
    """The same face at other places in the frame (the footage shifted 40 px right, then 30 px up): the tracked head,
    posed and translated (performance_vertices) and seen by the take's camera, follows it there, without turning to
    get there (beyond what seeing it off the lens's axis turns it); once the take's scale is held (TrackOptions.scale_frames) the distance no longer changes."""
    from facesmith.inference.flame.forward import surface_points
    from facesmith.inference.landmarks.detect import LandmarkDetector, available_backends, crop_detector
    from facesmith.inference.options import FitOptions
    from facesmith.inference.track import performance_vertices, track
    from facesmith.training.dense.views import session_light, session_view

    if "dense" not in available_backends():
        pytest.skip("the dense network needs a detector and onnxruntime")
    rng = np.random.default_rng(4)
    beta, light = rng.normal(size=dev_model.n_shape) * 0.5, session_light(rng)
    texture = np.full((64, 64, 3), (200, 150, 125), np.uint8)
    face = np.pad(session_view(dev_model, beta, 5.0, texture, light, 384, painted=True), ((40, 40), (40, 40), (0, 0)),
                  mode="edge")  # fmt: skip
    shifts = [(0, 0), (0, 0), (40, 0), (40, -30), (0, 0)]  # image shift of the face (x right, y down)
    frames = [np.ascontiguousarray(face[40 - dy : 424 - dy, 40 - dx : 424 - dx]) for dx, dy in shifts]
    detector = LandmarkDetector("dense", crop_detector(available_backends()))
    try:
        tracked = track(dev_model, beta, iter(enumerate(frames)), len(frames), 25.0, detector, FitOptions(),
                        TrackOptions(smooth_frames=1, scale="take", scale_frames=2))  # fmt: skip
    finally:
        detector.close()

    def nose(performance) -> np.ndarray:  # iBUG 30, the nose tip, in pixels
        tip = surface_points(performance_vertices(dev_model, performance), dev_model.faces,
                             dev_model.static_lmk_faces[13], dev_model.static_lmk_bary[13])  # fmt: skip
        return tracked.camera.project(tip)

    moved = nose(tracked) - nose(tracked)[0]
    np.testing.assert_allclose(moved, shifts, atol=2.5)  # pixels
    # Moved, not turned: a shifted image is the face seen off the lens's axis, which a turn of atan(40 / 614 px) =
    # 3.7° at most accounts for; the head swinging about the neck to get 40 px across would take about 14°.
    assert np.degrees(np.abs(tracked.pose[:, 0] - tracked.pose[0, 0]).max()) < 4.5
    assert np.ptp(tracked.translation[2:, 2]) < 1e-9  # the take's distance held after scale_frames
    still = nose(dataclasses.replace(tracked, translation=None))
    assert np.abs(still[3] - still[0]).max() < 10  # the rotation alone does not move it there
