"""Rig arrays for Blender (no bpy): driver expressions, bone layout, camera, eyeballs."""

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
    uv_sphere,
)


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
