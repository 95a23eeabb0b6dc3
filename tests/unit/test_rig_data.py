"""Rig arrays for Blender (no bpy): driver expressions, bone layout, camera, eyeballs, a fitted head's rig."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.camera import Camera
from facesmith.inference.flame.forward import rodrigues
from facesmith.inference.rig import (
    BONE_PARENTS,
    BONES,
    camera_setup,
    fit_sphere,
    pose_feature_expression,
    quaternion,
    rig_data,
    uv_sphere,
)
from facesmith.training.synthetic import sample_head

from ..tiny_flame import exact_result


@pytest.mark.parametrize("seed", range(4))
def test_driver_expressions_give_flame_pose_features(seed):
    aa = np.random.default_rng(seed).normal(scale=0.6, size=3)
    variables = dict(zip("wxyz", quaternion(aa), strict=True))
    features = np.array([[eval(pose_feature_expression(r, c), {}, variables) for c in range(3)] for r in range(3)])
    np.testing.assert_allclose(features, rodrigues(aa) - np.eye(3), atol=1e-12)


def test_bone_tree():
    assert BONES[0] == "root" and BONE_PARENTS["root"] is None
    chain = []
    bone = "jaw"
    while bone:
        chain.append(bone)
        bone = BONE_PARENTS[bone]
    assert chain == ["jaw", "head", "neck", "root"]
    assert BONE_PARENTS["eye_L"] == BONE_PARENTS["eye_R"] == "head"


def test_orthographic_camera_centres_the_photo():
    cam = Camera("orthographic", np.array([2000.0, 300.0, 200.0]))  # px per metre, tx, ty
    setup = camera_setup(cam, (600, 400))
    # The camera's axis hits the model point that projects to the image centre.
    centre_px = cam.project(setup.location[None] * [1, 1, 0])[0]
    np.testing.assert_allclose(centre_px, [300, 200])
    assert setup.kind == "ORTHO" and setup.ortho_scale == pytest.approx(600 / 2000.0)


def test_sphere_fit_and_mesh():
    verts, faces = uv_sphere(16, 10)
    assert np.allclose(np.linalg.norm(verts, axis=1), 1.0) and faces.max() == len(verts) - 1
    centre, radius = fit_sphere(verts * 0.012 + [0.03, 0.02, 0.01])
    np.testing.assert_allclose(centre, [0.03, 0.02, 0.01], atol=1e-9)
    assert radius == pytest.approx(0.012)
    # Every triangle faces outwards: a closed, consistently wound surface.
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("fc,fc->f", normals, tri.mean(1)) > 0).all()


def test_rig_of_a_fitted_head(flame_model):
    model = flame_model
    head = sample_head(model, np.random.default_rng(2))
    rig = rig_data(model, exact_result(model, head), 0, "head", 4)
    assert rig.basis.shape == (model.n_vertices, 3) and len(rig.expression_keys) == 4
    np.testing.assert_allclose(rig.fitted_expression, np.einsum("vck,k->vc", model.exprdirs, head["expression"]))
    assert len(rig.correctives) == 36 and rig.loop_uvs.shape == (3 * model.n_faces, 2)
    assert set(rig.eyelid_keys) == {"eyelid_L", "eyelid_R"}
    for j, bone in enumerate(("neck", "head", "jaw", "eye_L", "eye_R")):
        np.testing.assert_allclose(rig.bone_heads[bone], model.j_regressor[j] @ rig.basis)
    np.testing.assert_allclose(rig.pose_quaternions["jaw"], quaternion(head["pose"][2]))
    # Each eyeball sphere sits on its eye joint and just covers FLAME's eyeball, whose triangles it hides.
    for bone, joint in (("eye_L", 3), ("eye_R", 4)):
        verts, _ = rig.eyeballs[bone]
        centre = verts.mean(axis=0)
        ball = np.linalg.norm(rig.basis[model.lbs_weights[:, joint] > 0.99] - centre, axis=1)
        assert np.linalg.norm(centre - rig.joints[joint]) < 1e-4
        assert ball.max() < np.linalg.norm(verts - centre, axis=1).min() < 1.05 * ball.max()
    assert rig.eyeball_faces.sum() == model.eyeball_triangles().sum() > 0
