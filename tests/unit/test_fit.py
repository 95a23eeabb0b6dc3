"""FLAME fitting on synthetic landmarks: exact Jacobians, recovery, cameras, several photos, gaze."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facesmith.inference import flame
from facesmith.inference.camera import Camera
from facesmith.inference.fit import (
    FitOptions,
    Observation,
    Problem,
    fit_flame,
    fit_person,
    head_yaw,
    initial_state,
    photo_confidence,
    rotation_to_axis_angle,
)
from facesmith.inference.flame.regions import face_region
from facesmith.inference.landmarks.embedding import load_embedding
from facesmith.training.metrics import median_error_mm
from facesmith.training.synthetic import observe, sample_head

from ..conftest import REPO

EMBEDDING = REPO / "assets" / "mediapipe_dense_embedding.npz"


@pytest.fixture(scope="module")
def embedding(flame_model):
    # The learned table belongs to FLAME's mesh; the procedural head has its own embedding only.
    return load_embedding(EMBEDDING, flame_model) if flame_model.is_development else None


def _heads(model, seed, n, **kw):
    rng = np.random.default_rng(seed)
    return [sample_head(model, rng, **kw) for _ in range(n)], rng


@pytest.mark.parametrize("camera", ["orthographic", "perspective"])
@pytest.mark.parametrize("rigid", [True, False])
def test_jacobian_matches_finite_differences(flame_model, embedding, camera, rigid):
    (head,), rng = _heads(flame_model, 5, 1)
    obs = observe(flame_model, head, rng, embedding=embedding)
    options = FitOptions(camera=camera)
    problem = Problem(flame_model, [obs], options, embedding=embedding)
    state = initial_state(problem, 0)
    state.expression = rng.normal(size=problem.ne) * 0.5
    state.jaw = np.array([0.1, 0.02, -0.01])
    beta = rng.normal(size=problem.ns) * 0.5
    robust = [np.ones(len(problem.targets[0].points) + 17)]
    r0, jac, _ = problem.residuals(beta, [state], robust, True, True, rigid)
    free = problem.free_columns(1, True, rigid)
    h = 1e-6
    numeric = np.zeros_like(jac)
    for k in np.flatnonzero(free):
        delta = np.zeros(jac.shape[1])
        delta[k] = h
        nb, ns = problem.apply(beta, [state], delta, True)
        numeric[:, k] = (problem.residuals(nb, ns, robust, False, True, rigid)[0] - r0) / h
    scale = np.abs(numeric[:, free]).max()
    np.testing.assert_allclose(jac[:, free], numeric[:, free], atol=2e-4 * scale)


def test_noise_free_fit_recovers_pose_and_landmarks(flame_model, embedding):
    (head,), rng = _heads(flame_model, 1, 1)
    obs = observe(flame_model, head, rng, noise_px=0.0, outliers=0, embedding=embedding)
    exact = FitOptions(landmark_sigma=0.003)  # noise-free landmarks: weak priors are right
    sol = fit_flame(flame_model, [obs], exact, embedding=embedding)
    st = sol.photos[0]
    assert np.sqrt(np.mean(sol.residuals_px[0] ** 2)) < 0.6  # px, priors keep it from exactly zero
    true_rot = flame.rodrigues(head["pose"][0])
    angle = np.degrees(np.linalg.norm(rotation_to_axis_angle(st.rotation.T @ true_rot)))
    assert angle < 2.0
    assert abs(st.jaw[0] - head["pose"][flame.JAW, 0]) < 0.05
    np.testing.assert_allclose(st.gaze, head["pose"][3, :2], atol=0.03)  # radians, from the iris centres


def test_fit_beats_mean_face_and_survives_outliers(flame_model, embedding):
    heads, rng = _heads(flame_model, 2, 6)
    mask = face_region(flame_model)
    fit_err, mean_err = [], []
    for head in heads:
        obs = observe(flame_model, head, rng, noise_px=1.5, outliers=5, embedding=embedding)
        sol = fit_flame(flame_model, [obs], FitOptions(), embedding=embedding)
        truth = flame.flame_forward(flame_model, head["shape"]).vertices[0]
        fit_err.append(median_error_mm(flame.flame_forward(flame_model, sol.shape).vertices[0], truth, mask))
        mean_err.append(median_error_mm(flame_model.v_template, truth, mask))
        # the outliers (15-30 px off) are the largest residuals, not spread over the fit
        assert np.sort(sol.residuals_px[0])[-5:].min() > 8.0
    assert np.median(fit_err) < 0.7 * np.median(mean_err)


def test_perspective_camera_fits_perspective_photo(flame_model, embedding):
    (head,), rng = _heads(flame_model, 3, 1)
    focal = 1.6 * 512  # the fit's default focal length for a 512 px photo
    scale, cx, cy = head["camera"].params
    # A phone-like close-up: 0.35 m away, where perspective visibly changes the face.
    head["camera"] = Camera("perspective", np.array([(cx - 256) / scale, -(cy - 256) / scale, 0.35]), focal, (256, 256))
    obs = observe(flame_model, head, rng, noise_px=0.5, outliers=0, embedding=embedding)
    sol = fit_flame(flame_model, [obs], FitOptions(camera="perspective", landmark_sigma=0.005), embedding=embedding)
    cam = sol.photos[0].camera
    assert cam.is_perspective and cam.params[2] == pytest.approx(0.35, abs=0.07)  # metres to the face
    assert np.sqrt(np.mean(sol.residuals_px[0] ** 2)) < 1.0
    ortho = fit_flame(flame_model, [obs], FitOptions(camera="orthographic", landmark_sigma=0.005), embedding=embedding)
    assert np.mean(sol.residuals_px[0] ** 2) < np.mean(ortho.residuals_px[0] ** 2)


def test_ibug68_observations_fit_too(flame_model):
    (head,), rng = _heads(flame_model, 4, 1)
    out = flame.flame_forward(flame_model, head["shape"], head["expression"], head["pose"])
    pts = head["camera"].project(flame.landmarks68(flame_model, out)[0]) + rng.normal(0, 0.5, (68, 2))
    sol = fit_flame(flame_model, [Observation(pts, "ibug68", (512, 512))], FitOptions())
    assert len(sol.residuals_px[0]) == 68 and np.sqrt(np.mean(sol.residuals_px[0] ** 2)) < 1.5
    assert np.all(sol.photos[0].gaze == 0)  # no iris points: gaze left at rest


def test_several_photos_share_identity_and_beat_one(flame_model, embedding):
    mask = face_region(flame_model)
    errors_one, errors_all = [], []
    for seed in range(3):
        heads, rng = _heads(flame_model, 10 + seed, 3)
        for h in heads[1:]:
            h["shape"] = heads[0]["shape"]  # one person, three photos
        obs = [observe(flame_model, h, rng, noise_px=1.5, outliers=3, embedding=embedding) for h in heads]
        truth = flame.flame_forward(flame_model, heads[0]["shape"]).vertices[0]
        joint, conf = fit_person(flame_model, obs, FitOptions(), embedding)
        assert len(joint.photos) == 3 and all(0 < c <= 1 for c in conf)
        errors_all.append(median_error_mm(flame.flame_forward(flame_model, joint.shape).vertices[0], truth, mask))
        single = fit_flame(flame_model, obs[:1], FitOptions(), embedding=embedding)
        errors_one.append(median_error_mm(flame.flame_forward(flame_model, single.shape).vertices[0], truth, mask))
    assert np.mean(errors_all) < np.mean(errors_one)


@pytest.mark.parametrize(
    ("rms", "size", "yaw", "expected"),
    [
        (0.01, 200, 0.0, 1.0),
        (0.02, 200, 0.0, 0.5),
        (0.01, 75, 0.0, 0.5),
        (0.01, 200, np.pi / 3, 0.5),
        (0.01, 200, 1.5, 0.2),
    ],
)
def test_photo_confidence_table(rms, size, yaw, expected):
    assert photo_confidence(rms, size, yaw) == pytest.approx(expected, abs=1e-3)


def test_head_yaw_sign():
    assert head_yaw(flame.rodrigues(np.array([0.0, 0.3, 0.0]))) == pytest.approx(0.3)


def test_fit_options_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FitOptions().iterations = 3


def test_dolly_jacobian_matches_finite_differences():
    from facesmith.inference.fit.problem import dolly_jacobian

    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.05, (20, 3))
    cam = Camera("perspective", np.array([0.01, -0.02, 0.6]), 900.0, (256.0, 240.0))

    def dolly(d: float) -> np.ndarray:
        p = cam.params.copy()
        p[2] *= np.exp(d)
        return Camera("perspective", p, cam.focal * np.exp(d), cam.centre).project(world)

    numeric = (dolly(1e-6) - dolly(-1e-6)) / 2e-6
    np.testing.assert_allclose(dolly_jacobian(cam, world), numeric, rtol=1e-4, atol=1e-6)


def test_fitted_focal_length_recovers_a_close_camera(flame_model, embedding):
    """A photo from 0.3 m with a wide lens, fitted from the default 50 mm-like start: the fitted focal length
    moves towards the true one (the face's foreshortening shows it)."""
    (head,), rng = _heads(flame_model, 5, 1)
    true_focal = 0.7 * 512
    scale, cx, cy = head["camera"].params
    head["camera"] = Camera("perspective", np.array([(cx - 256) / scale, -(cy - 256) / scale, 0.3]), true_focal,
                            (256, 256))  # fmt: skip
    obs = observe(flame_model, head, rng, noise_px=0.3, outliers=0, embedding=embedding)
    fixed = fit_flame(flame_model, [obs], FitOptions(fit_focal=False, landmark_sigma=0.005), embedding=embedding)
    free = fit_flame(flame_model, [obs], FitOptions(landmark_sigma=0.005), embedding=embedding)
    start = 1.6 * 512
    assert abs(np.log(free.photos[0].camera.focal / true_focal)) < 0.5 * abs(np.log(start / true_focal))
    assert np.mean(free.residuals_px[0] ** 2) < np.mean(fixed.residuals_px[0] ** 2)
