"""ARKit blendshapes moved from ICT-FaceKit onto FLAME's mesh (assets/ict_arkit.npz, inference/arkit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.arkit import ARKIT_FILE, ARKIT_NAMES, FORMAT, SCALE_LIMITS, key_scales, load_arkit_keys
from facesmith.inference.flame.forward import flame_forward, landmarks68
from facesmith.inference.rig import rig_data
from facesmith.training.synthetic import sample_head

from ..tiny_flame import exact_result

FLAME_VERTICES = 5023
CHIN_IBUG = 8


@pytest.fixture(scope="module")
def keys() -> dict[str, np.ndarray]:
    out = load_arkit_keys(FLAME_VERTICES)
    assert out is not None
    return out


def test_the_52_arkit_names():
    assert len(ARKIT_NAMES) == len(set(ARKIT_NAMES)) == 52
    assert sum(n.endswith("Left") for n in ARKIT_NAMES) == sum(n.endswith("Right") for n in ARKIT_NAMES) == 20


def test_asset_holds_51_arkit_keys_in_metres(keys):
    assert list(keys) == [n for n in ARKIT_NAMES if n != "tongueOut"]  # ICT has no tongue shape
    with np.load(ARKIT_FILE, allow_pickle=False) as z:
        assert str(z["format"]) == FORMAT and list(z["missing"]) == ["tongueOut"]
        assert z["bary"].shape == (FLAME_VERTICES, 3) and abs(z["bary"].sum(1) - 1).max() < 1e-5
        assert float(z["residual_p95_mm"]) < 1.0
        valid = z["valid"]
    for name, delta in keys.items():
        assert delta.shape == (FLAME_VERTICES, 3) and np.isfinite(delta).all(), name
        assert not delta[~valid].any(), name
    peak = {name: np.linalg.norm(d, axis=1).max() for name, d in keys.items()}
    # Metres. ICT's largest skin motions are jawOpen's chin (4.2 cm) and mouthClose, which lifts the lower lip
    # back against the upper one and is meant on top of jawOpen (as in ARKit); everything else is under 3 cm.
    wide = ("jawOpen", "mouthClose")
    assert all(0.03 < peak[n] < 0.05 for n in wide)
    assert all(0.0005 < p < 0.03 for n, p in peak.items() if n not in wide), peak


def test_other_meshes_get_no_keys(procedural_model, tmp_path):
    assert procedural_model.n_vertices != FLAME_VERTICES
    assert load_arkit_keys(procedural_model.n_vertices) is None
    assert load_arkit_keys(FLAME_VERTICES, tmp_path / "missing.npz") is None
    other = tmp_path / "other.npz"
    np.savez(other, format=np.array("something-else"), n_vertices=np.array(FLAME_VERTICES))
    assert load_arkit_keys(FLAME_VERTICES, other) is None
    head = sample_head(procedural_model, np.random.default_rng(0))
    assert rig_data(procedural_model, exact_result(procedural_model, head)).arkit_keys == {}


def test_eye_blink_left_closes_the_subjects_left_eye(keys, dev_model):
    """ARKit's Left is the subject's left: FLAME's eye_L side (+x)."""
    template = dev_model.v_template
    eye_l, eye_r = (dev_model.j_regressor @ template)[3:5]
    assert eye_l[0] > 0 > eye_r[0]
    for name, eye, other in (("eyeBlinkLeft", eye_l, eye_r), ("eyeBlinkRight", eye_r, eye_l)):
        delta = keys[name]
        moved = np.linalg.norm(delta, axis=1) > 0.001
        assert moved.sum() > 20
        near = np.linalg.norm(template[moved] - eye, axis=1) < np.linalg.norm(template[moved] - other, axis=1)
        assert near.mean() > 0.95, name
        assert (np.sign(template[moved, 0]) == np.sign(eye[0])).mean() > 0.95, name
        assert delta[moved, 1].mean() < 0  # the upper lid comes down


def test_jaw_open_moves_the_chin_down(keys, dev_model):
    chin_point = landmarks68(dev_model, flame_forward(dev_model))[0, CHIN_IBUG]
    chin = np.linalg.norm(dev_model.v_template - chin_point, axis=1) < 0.01
    assert chin.sum() > 5 and (keys["jawOpen"][chin, 1] < -0.015).all()
    closed = keys["jawOpen"] + keys["mouthClose"]  # lips sealed again, jaw still down
    assert (closed[chin, 1] < -0.015).all()


def test_keys_scale_with_the_fitted_heads_eyes_and_mouth(keys, dev_model):
    lmk = landmarks68(dev_model, flame_forward(dev_model))[0]
    assert key_scales(lmk, lmk) == {"eyes": 1.0, "mouth": 1.0}
    wide = lmk * [1.05, 1.0, 1.0]
    wide[48:55] *= [1.1, 1.0, 1.0]  # a wider mouth on top
    scales = key_scales(lmk, wide)
    assert scales["eyes"] == pytest.approx(1.05, abs=1e-3) and scales["mouth"] == pytest.approx(1.155, abs=0.01)
    assert key_scales(lmk, lmk * 2)["eyes"] == SCALE_LIMITS[1]
    head = sample_head(dev_model, np.random.default_rng(1))
    rig = rig_data(dev_model, exact_result(dev_model, head))
    assert list(rig.arkit_keys) == list(keys)
    template, fitted = (landmarks68(dev_model, flame_forward(dev_model, s))[0] for s in (None, head["shape"]))
    scales = key_scales(template, fitted)
    assert scales["eyes"] != 1.0 and scales["mouth"] != 1.0
    np.testing.assert_allclose(rig.arkit_keys["jawOpen"], keys["jawOpen"] * scales["mouth"])
    np.testing.assert_allclose(rig.arkit_keys["eyeBlinkLeft"], keys["eyeBlinkLeft"] * scales["eyes"])
    np.testing.assert_allclose(rig.arkit_keys["browInnerUp"], keys["browInnerUp"] * scales["eyes"])


def test_bounded_least_squares_matches_a_reference_solver():
    from scipy.optimize import lsq_linear

    from facesmith.inference.arkit import bounded_least_squares

    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 12)) @ np.diag(np.linspace(0.2, 3, 12))
    for b in (a @ rng.uniform(-0.5, 1.5, 12), rng.normal(size=200)):
        ours = bounded_least_squares(a.T @ a, a.T @ b)
        ref = lsq_linear(a, b, bounds=(0, 1)).x
        assert ours.min() >= 0 and ours.max() <= 1
        assert np.linalg.norm(a @ ours - b) <= np.linalg.norm(a @ ref - b) * (1 + 1e-6) + 1e-9


def test_an_arkit_expression_comes_back_as_its_weights(dev_model, keys):
    from facesmith.inference.arkit import arkit_weights
    from facesmith.inference.flame.regions import face_region

    truth = {"jawOpen": 0.4, "mouthSmileLeft": 0.7, "mouthSmileRight": 0.6, "browInnerUp": 0.5, "eyeBlinkRight": 1.0}
    delta = sum(w * keys[n] for n, w in truth.items())
    weights, rms = arkit_weights(keys, delta, face_region(dev_model))
    assert rms < 0.05
    for name, w in weights.items():
        assert w == pytest.approx(truth.get(name, 0.0), abs=0.02), name


def test_psi_to_arkit_map_explains_flame_expressions(dev_model, keys):
    from facesmith.inference.arkit import psi_to_arkit
    from facesmith.inference.flame.regions import face_region

    m, c, errors = psi_to_arkit(keys, dev_model.exprdirs, face_region(dev_model), samples=400)
    assert m.shape == (len(keys), dev_model.n_expr) and c.shape == (len(keys),)
    # ARKit's keys explain about half of a random FLAME expression (2.3 -> 1.1 mm RMS); the linear map nearly as much.
    assert errors["bounded_fit_rms_mm"] < 0.6 * errors["expression_rms_mm"]
    assert errors["map_rms_mm"] < 1.25 * errors["bounded_fit_rms_mm"] and errors["weight_mae"] < 0.1


def test_the_fitted_expression_as_arkit_weights(dev_model, keys):
    import dataclasses

    from facesmith.inference.flame.forward import JAW

    head = sample_head(dev_model, np.random.default_rng(2))
    result = exact_result(dev_model, head)
    photo = result.photos[0]
    pose = photo.pose.copy()
    pose[JAW] = [0.25, 0.0, 0.0]  # an open jaw: ARKit's jawOpen carries it
    result = dataclasses.replace(result, photos=(dataclasses.replace(photo, pose=pose),))
    flame_rig = rig_data(dev_model, result)
    arkit_rig = rig_data(dev_model, result, fitted_as="arkit")
    assert flame_rig.fitted_as == "flame" and arkit_rig.fitted_as == "arkit"
    assert flame_rig.arkit_fitted == arkit_rig.arkit_fitted and arkit_rig.arkit_fitted["jawOpen"] > 0.3
    assert 0 < arkit_rig.arkit_fitted_rms_mm < 5
    np.testing.assert_allclose(arkit_rig.pose_quaternions["jaw"], [1, 0, 0, 0])
    assert not np.allclose(flame_rig.pose_quaternions["jaw"], [1, 0, 0, 0])
    with pytest.raises(ValueError, match="fitted expression"):
        rig_data(dev_model, result, fitted_as="metahuman")
