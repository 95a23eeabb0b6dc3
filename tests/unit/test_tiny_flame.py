"""The procedural head (tests/tiny_flame.py) keeps the rules of FLAME's structure that the code relies on."""

from __future__ import annotations

import numpy as np

from facesmith.inference.fit import pupil_vertices

from ..tiny_flame import MOUTH_HALF_WIDTH, MOUTH_Y, procedural_flame


def test_closed_but_for_the_mouth_and_outward(procedural_model):
    faces, verts = procedural_model.faces, procedural_model.v_template
    # Consistently wound: every directed edge once; its reverse is there too except along the lips' slit.
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    open_edges = np.array([e for e in directed if e[::-1] not in directed])
    assert len(open_edges) > 4 and np.allclose(verts[open_edges, 1], MOUTH_Y)
    assert np.abs(verts[open_edges, 0]).max() < MOUTH_HALF_WIDTH + 0.01  # to the first vertex past the corner
    # Outward: each part (head, two eyeballs) encloses a positive volume (divergence theorem; the slit is shut).
    tri = procedural_model.v_template[faces]
    signed = np.einsum("fc,fc->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6
    for part in (procedural_model.lbs_weights[faces[:, 0], 3:5].sum(1) < 0.5, procedural_model.eyeball_triangles()):
        assert signed[part].sum() > 0


def test_mirror_symmetric_mesh_and_uv():
    """The texture fill mirrors across u = ½: the head's UVs must mirror with its left and right halves."""
    model = procedural_flame()
    corners = np.c_[model.v_template[model.faces].reshape(-1, 3), model.uv_coords[model.uv_faces].reshape(-1, 2)]
    mirrored = corners * [-1, 1, 1, -1, 1] + [0, 0, 0, 1, 0]
    key = {tuple(c) for c in np.round(corners, 9).tolist()}
    assert all(tuple(c) in key for c in np.round(mirrored, 9).tolist())
    assert 0 < model.uv_coords.min() and model.uv_coords.max() < 1


def test_eyeballs_joints_and_scales(procedural_model):
    m = procedural_model
    joints = m.j_regressor @ m.v_template
    for joint in (3, 4):
        eyeball = m.lbs_weights[:, joint] > 0.99
        np.testing.assert_allclose(joints[joint], m.v_template[eyeball].mean(0), atol=1e-12)
        radius = np.linalg.norm(m.v_template[eyeball] - joints[joint], axis=1)
        assert np.ptp(radius) < 1e-12 and 0.010 < radius[0] < 0.014  # a sphere of an eye's size
    # the pupil is each eyeball's front-most vertex, the subject's right eye (x < 0) first
    right, left = m.v_template[pupil_vertices(m)]
    assert right[0] < 0 < left[0] and right[2] == left[2] > joints[3, 2] + 0.01
    # jaw above the chin and behind the mouth, head pivot above the root
    assert joints[0, 1] < joints[1, 1] and joints[2, 2] < 0 < joints[3, 2]
    # a unit coefficient moves the head by millimetres, not metres or microns
    for basis in (m.shapedirs, m.exprdirs):
        rms = np.sqrt((basis**2).sum(1).mean(0))
        assert (rms > 3e-4).all() and (rms < 1e-2).all() and np.all(np.diff(rms) < 0)
