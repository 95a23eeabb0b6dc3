"""FLAME forward pass: template at zero, jaw locality, LBS against an independent reference, numpy = torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facesmith.inference import flame


def test_zero_parameters_give_the_template(tiny_model):
    out = flame.flame_forward(tiny_model)
    np.testing.assert_allclose(out.vertices[0], tiny_model.v_template, atol=1e-12)
    np.testing.assert_allclose(out.joints[0], tiny_model.j_regressor @ tiny_model.v_template, atol=1e-12)


def test_rodrigues_matches_scipy():
    aa = np.random.default_rng(1).normal(size=(20, 3))
    aa[0] = 0.0
    np.testing.assert_allclose(flame.rodrigues(aa), Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)


def test_jaw_rotation_moves_only_jaw_weighted_vertices(tiny_model):
    pose = np.zeros((5, 3))
    pose[flame.JAW] = [0.3, 0.0, 0.0]
    no_correctives = dataclasses.replace(tiny_model, posedirs=np.zeros_like(tiny_model.posedirs))
    moved = np.linalg.norm(flame.flame_forward(no_correctives, pose=pose).vertices[0] - tiny_model.v_template, axis=1)
    jaw = tiny_model.lbs_weights[:, flame.JAW] > 0
    assert np.all(moved[~jaw] < 1e-12)
    assert np.all(moved[jaw] > 0)


def test_jaw_rotation_on_a_head_is_local(flame_model):
    pose = np.zeros((5, 3))
    pose[flame.JAW] = [0.3, 0.0, 0.0]
    moved = np.linalg.norm(flame.flame_forward(flame_model, pose=pose).vertices[0] - flame_model.v_template, axis=1)
    jaw = flame_model.lbs_weights[:, flame.JAW] > 0
    # Only pose correctives reach vertices the jaw does not skin: about a millimetre, against centimetres.
    assert moved[~jaw].max() < 2e-3
    assert moved[jaw].max() > 0.03


def reference_vertex(model, shape, expr, pose, v: int) -> np.ndarray:
    """One vertex posed from scratch: loops, scipy rotations, and transforms written as T(J) R T(-J)."""
    shaped = model.v_template + model.shapedirs[:, :, : len(shape)] @ shape + model.exprdirs[:, :, : len(expr)] @ expr
    joints = model.j_regressor @ shaped
    rots = Rotation.from_rotvec(pose).as_matrix()
    feature = [rots[j][r, c] - (r == c) for j in range(1, 5) for r in range(3) for c in range(3)]
    point = shaped[v] + sum(model.posedirs[v, :, k] * feature[k] for k in range(36))

    def about_joint(j: int) -> np.ndarray:
        to, back, rot = np.eye(4), np.eye(4), np.eye(4)
        to[:3, 3], back[:3, 3], rot[:3, :3] = joints[j], -joints[j], rots[j]
        return to @ rot @ back

    def world(j: int) -> np.ndarray:
        parent = model.parents[j]
        return about_joint(j) if parent < 0 else world(parent) @ about_joint(j)

    blended = sum(model.lbs_weights[v, j] * world(j) for j in range(5))
    return (blended @ np.append(point, 1.0))[:3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lbs_matches_independent_reference(tiny_model, seed):
    rng = np.random.default_rng(seed)
    shape, expr = rng.normal(size=tiny_model.n_shape), rng.normal(size=tiny_model.n_expr)
    pose = rng.normal(scale=0.4, size=(5, 3))
    verts = flame.flame_forward(tiny_model, shape, expr, pose).vertices[0]
    ref = np.array([reference_vertex(tiny_model, shape, expr, pose, v) for v in range(tiny_model.n_vertices)])
    np.testing.assert_allclose(verts, ref, atol=1e-6, rtol=0)


def test_batch_equals_single(tiny_model):
    rng = np.random.default_rng(3)
    shape, expr = rng.normal(size=(4, tiny_model.n_shape)), rng.normal(size=(4, tiny_model.n_expr))
    pose = rng.normal(scale=0.3, size=(4, 5, 3))
    batched = flame.flame_forward(tiny_model, shape, expr, pose).vertices
    for i in range(4):
        np.testing.assert_allclose(batched[i], flame.flame_forward(tiny_model, shape[i], expr[i], pose[i]).vertices[0])


def test_fewer_components_mean_zero_for_the_rest(tiny_model):
    full = np.zeros(tiny_model.n_shape)
    full[:2] = [1.0, -0.5]
    np.testing.assert_allclose(
        flame.flame_forward(tiny_model, shape=[1.0, -0.5]).vertices,
        flame.flame_forward(tiny_model, shape=full).vertices,
    )
    with pytest.raises(ValueError, match="shape has 7 components, the model has 6"):
        flame.flame_forward(tiny_model, shape=np.zeros(7))


def test_numpy_and_torch_agree(flame_model):
    torch = pytest.importorskip("torch")
    from facesmith.training.flame_torch import FlameLayer

    rng = np.random.default_rng(4)
    shape, expr = rng.normal(size=(3, flame_model.n_shape)), rng.normal(size=(3, flame_model.n_expr))
    pose = rng.normal(scale=0.3, size=(3, 5, 3))
    out = flame.flame_forward(flame_model, shape, expr, pose)
    layer = FlameLayer(flame_model, dtype=torch.float64)
    verts, joints, rot = layer(torch.tensor(shape), torch.tensor(expr), torch.tensor(pose))
    np.testing.assert_allclose(verts.numpy(), out.vertices, atol=1e-9)
    np.testing.assert_allclose(joints.numpy(), out.joints, atol=1e-9)
    np.testing.assert_allclose(layer.landmarks68(verts, rot).numpy(), flame.landmarks68(flame_model, out), atol=1e-9)
    # float32 (the training setting) stays within a micrometre.
    verts32, _, _ = FlameLayer(flame_model)(*(torch.tensor(x, dtype=torch.float32) for x in (shape, expr, pose)))
    np.testing.assert_allclose(verts32.numpy(), out.vertices, atol=1e-5)


def test_torch_gradients_are_finite_at_zero_pose(tiny_model):
    torch = pytest.importorskip("torch")
    from facesmith.training.flame_torch import FlameLayer

    pose = torch.zeros(1, 5, 3, requires_grad=True)
    verts, _, _ = FlameLayer(tiny_model)(torch.zeros(1, 2), torch.zeros(1, 2), pose)
    verts.sum().backward()
    assert torch.isfinite(pose.grad).all()


def test_landmark_count_and_ibug_order(flame_model):
    out = flame.flame_forward(flame_model)
    lmk = flame.landmarks68(flame_model, out)[0]
    assert lmk.shape == (68, 3)
    x, y, z = lmk.T
    assert np.argmin(y) == 8  # chin
    assert np.argmax(z[27:36]) + 27 == 30  # nose tip
    # iBUG numbers the subject's right side first; FLAME's x points to the subject's left.
    for right, left in [(0, 16), (36, 45), (39, 42), (48, 54), (31, 35)]:
        assert x[right] < 0 < x[left]
    assert np.all(np.diff(x[0:9]) > 0) and np.all(np.diff(x[8:17]) > 0)  # jaw line runs right to left
    mp = flame.landmarks_mediapipe(flame_model, out)[0]
    assert mp.shape == (len(flame_model.mediapipe_lmk_indices), 3)  # FLAME's own: 105 (test_dev_model_sizes)
    idx = list(flame_model.mediapipe_lmk_indices)
    assert mp[idx.index(33), 0] < 0 < mp[idx.index(263), 0]  # MediaPipe's right / left outer eye corners


@pytest.mark.parametrize(("yaw_deg", "row"), [(0, 0), (20, 20), (39, 39), (60, 39), (-1, 40), (-39, 78), (-70, 78)])
def test_contour_row_follows_head_yaw(yaw_deg, row):
    rot = np.tile(np.eye(3), (1, 5, 1, 1))
    rot[0, 0] = Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix()
    assert flame.contour_rows(rot)[0] == row


def test_contour_landmarks_change_with_yaw(flame_model):
    pose = np.zeros((5, 3))
    pose[0, 1] = np.radians(30)
    turned = flame.flame_forward(flame_model, pose=pose)
    rows = flame.contour_rows(turned.rotations)
    assert rows[0] == 30
    static = flame.surface_points(
        turned.vertices, flame_model.faces, flame_model.dynamic_lmk_faces[0], flame_model.dynamic_lmk_bary[0]
    )
    assert not np.allclose(flame.landmarks68(flame_model, turned)[0, :17], static[0])
