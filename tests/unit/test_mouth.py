"""Teeth, gums, tongue, mouth socket and lashes from ICT-FaceKit (assets/ict_mouth.npz, inference/mouth.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.mouth import FORMAT, MOUTH_FILE, PARTS, fitted_parts, load_mouth
from facesmith.inference.rig import region_scales, rig_data
from facesmith.training.synthetic import sample_head

from ..conftest import SHARED
from ..tiny_flame import exact_result

ICT = SHARED / "ict" / "ict_facekit.npz"


@pytest.fixture(scope="module")
def asset() -> dict[str, np.ndarray]:
    out = load_mouth(5023)
    assert out is not None
    return out


def test_the_asset_holds_the_parts_on_flame(asset, procedural_model):
    assert str(asset["format"]) == FORMAT and list(asset["parts"]) == list(PARTS)
    v, tri, part = asset["vertices"], asset["triangles"], asset["part"]
    assert v.shape == (len(part), 3) and np.isfinite(v).all()
    assert (part[tri] == part[tri[:, :1]]).all()  # no triangle joins two parts
    assert set(np.unique(part)) == set(range(len(PARTS)))
    teeth = part == PARTS.index("teeth")
    assert np.unique(asset["rigid_group"][teeth]).size == 32  # ICT's 32 teeth, each rigid
    jaw = asset["jaw_weight"]
    lower = teeth & (jaw > 0.5)
    assert lower.sum() and (teeth & (jaw < 0.5)).sum()  # lower and upper teeth, 0/1 on the jaw bone
    assert v[lower, 1].mean() < v[teeth & (jaw < 0.5), 1].mean()
    assert load_mouth(procedural_model.n_vertices) is None and load_mouth(5023, MOUTH_FILE.with_name("nope")) is None


def test_parts_follow_the_head_and_teeth_stay_rigid(asset, dev_model):
    template = dev_model.v_template
    same = fitted_parts(asset, template, template, {"eyes": 1.0, "mouth": 1.0})
    np.testing.assert_allclose(np.r_[same.mouth_vertices, same.lash_vertices].mean(0),
                               asset["vertices"].mean(0), atol=1e-6)  # fmt: skip
    wide = template * [1.15, 1.0, 1.0]  # a head 15 % wider
    moved = fitted_parts(asset, template, wide, {"eyes": 1.15, "mouth": 1.15})
    teeth = moved.mouth_part == PARTS.index("teeth")
    groups = asset["rigid_group"][asset["part"] < PARTS.index("eyelashes_left")]
    for g in np.unique(groups[teeth])[:4]:
        a, b = same.mouth_vertices[groups == g], moved.mouth_vertices[groups == g]
        np.testing.assert_allclose(b - a, np.broadcast_to((b - a).mean(0), a.shape), atol=1e-9)  # translated only
    left, right = (moved.lash_vertices[:, 0] > 0), (moved.lash_vertices[:, 0] < 0)
    spread = moved.lash_vertices[left, 0].mean() - moved.lash_vertices[right, 0].mean()
    base = same.lash_vertices[left, 0].mean() - same.lash_vertices[right, 0].mean()
    assert spread == pytest.approx(1.15 * base, rel=0.03)  # the lashes follow the eyes apart
    np.testing.assert_allclose(moved.mouth_keys["jawOpen"], 1.15 * same.mouth_keys["jawOpen"])
    lower = teeth & (moved.mouth_jaw > 0.5)
    assert -moved.mouth_keys["jawOpen"][lower, 1].mean() > 0.02  # jawOpen takes the lower teeth centimetres down
    assert np.abs(moved.mouth_keys["jawOpen"][teeth & (moved.mouth_jaw < 0.5)]).max() < 1e-4


def test_a_fitted_head_gets_its_mouth(dev_model):
    head = sample_head(dev_model, np.random.default_rng(3))
    rig = rig_data(dev_model, exact_result(dev_model, head))
    assert rig.mouth is not None and len(rig.mouth.mouth_vertices) + len(rig.mouth.lash_vertices) == 10803
    scales = region_scales(dev_model, head["shape"])
    asset = load_mouth(5023)
    names = [str(n) for n in asset["key_names"]]
    lash = asset["part"] >= PARTS.index("eyelashes_left")
    blink = asset["key_deltas"][names.index("eyeBlinkLeft")].astype(float)[lash]
    np.testing.assert_allclose(rig.mouth.lash_keys["eyeBlinkLeft"], blink * scales["eyes"])
    follow_m, follow_l = rig.mouth.follow(rig.fitted_expression)
    assert follow_m.shape == rig.mouth.mouth_vertices.shape and follow_l.shape == rig.mouth.lash_vertices.shape


def test_the_upper_teeth_reach_below_the_lips_and_keep_the_bite(asset, dev_model):
    """Placed as ICT places them under its lips, the upper incisors' edge sat 1.4 mm under the template's
    upper inner lip (iBUG 62), so a fitted smile, whose lips part less and rise less than the photo's, showed a
    thin row of teeth over a dark band. Teeth, gums and tongue now sit TEETH_DROP_M lower, all of them: the bite
    (upper incisors about 1 mm over the lower ones, in front) stays ICT's, and the socket stays with the lips."""
    from facesmith.training.ict_mouth import TEETH_DROP_M

    assert dev_model.has_landmarks68
    k = 62 - 17  # static landmarks start at iBUG 17
    face = dev_model.faces[dev_model.static_lmk_faces[k]]
    upper_lip = (dev_model.v_template[face] * dev_model.static_lmk_bary[k][:, None]).sum(0)
    v, part, jaw = asset["vertices"].astype(np.float64), asset["part"], asset["jaw_weight"]
    front = (part == PARTS.index("teeth")) & (np.abs(v[:, 0]) < 0.004)  # the central incisors
    upper, lower = v[front & (jaw < 0.5)], v[front & (jaw > 0.5)]
    below_lip = upper_lip[1] - upper[:, 1].min()
    assert below_lip == pytest.approx(TEETH_DROP_M + 0.0014, abs=0.0005) and below_lip > 0.005
    assert 0.0005 < lower[:, 1].max() - upper[:, 1].min() < 0.002  # overbite as ICT's, 1.1 mm
    assert upper[:, 2].max() > lower[:, 2].max()  # the upper incisors in front of the lower ones


@pytest.mark.skipif(not ICT.is_file(), reason=f"needs {ICT}")
def test_the_asset_rebuilds_from_ict(dev_model, tmp_path):
    from facesmith.training.ict_mouth import build

    arrays = build(dev_model, ICT)
    with np.load(MOUTH_FILE, allow_pickle=False) as z:
        for key in ("vertices", "triangles", "jaw_weight", "rigid_group", "key_deltas"):
            np.testing.assert_array_equal(arrays[key], z[key], err_msg=key)


def test_lashes_fade_from_root_to_tip_and_the_lower_ones_are_lighter():
    """A lash of three points leaving the skin (a flat patch at z = 0) upwards of the eye and one downwards: the root
    is opaque, the tip (beyond LASH_TIP_M) clear, the lower lash at LOWER_LASHES of the upper."""
    from facesmith.inference.mouth import LASH_TIP_M, LOWER_LASHES, lash_opacity

    g = np.linspace(-0.02, 0.02, 41)
    skin = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    skin = np.c_[skin, np.zeros(len(skin))]
    out = np.array([0.0, 0.5, 2.0]) * LASH_TIP_M
    upper = np.c_[np.zeros(3), np.full(3, 0.005), out]
    lower = np.c_[np.zeros(3), np.full(3, -0.005), out]
    alpha = lash_opacity(np.r_[upper, lower], np.zeros(6, int), skin)
    np.testing.assert_allclose(alpha[:3], [1.0, 0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(alpha[3:], LOWER_LASHES * alpha[:3], atol=1e-9)
