"""The iris measured in a photo and the eyeball texture made from it (inference/texture/eyes.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facesmith.inference.rig import eye_geometry, eyeball_loop_uvs, uv_sphere
from facesmith.inference.texture.eyes import (
    FALLBACK_IRIS_LINEAR,
    IRIS_RADIUS_MM,
    PUPIL_SHARE,
    EyeGeometry,
    bake_eyes,
    delta_e76,
    eye_texture,
    fuse_colour,
    iris_share,
    measure_iris,
    measure_photo,
    sphere_uv,
    texel_angles,
    texture_iris_colour,
)
from facesmith.inference.texture.maps import linear_to_srgb, srgb_to_linear

from ..tiny_flame import exact_fit


def draw_eye(
    iris_srgb, skin_srgb=(200, 150, 130), radius: float = 9.0, centre=(100.0, 62.0), width: float = 40.0,
    size=(200, 120), lid_cover: float = 0.35, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """An 8-bit photo of one eye: skin, an almond-shaped opening with sclera, the iris disc (with a darker rim)
    and pupil, a specular highlight, the upper lid covering the top `lid_cover` of the iris with a lash line
    along it, mild noise, a little blur. Returns the image and the eye's corners (2, 2)."""
    import cv2

    w, h = size
    cx, cy = centre
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = skin_srgb
    corners = np.array([[cx - width / 2 - 2, cy + 1.5], [cx + width / 2 + 2, cy - 1.5]])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # The opening: between two arcs through the corners, the upper one `lid_cover` down over the iris.
    t = (xs - corners[0, 0]) / (corners[1, 0] - corners[0, 0])
    base = corners[0, 1] + t * (corners[1, 1] - corners[0, 1])
    inside_x = (t > 0) & (t < 1)
    upper = base - (radius * (1 - 2 * lid_cover) + 0.2 * radius) * 4 * t * (1 - t) * 1.2
    lower = base + radius * 0.95 * 4 * t * (1 - t) * 1.1
    opening = inside_x & (ys > upper) & (ys < lower)
    img[opening] = (235, 228, 222)
    d = np.hypot(xs - cx, ys - cy)
    iris = opening & (d <= radius)
    img[iris] = iris_srgb
    rim = opening & (d <= radius) & (d > 0.85 * radius)
    img[rim] = np.asarray(iris_srgb, np.float32) * 0.6
    img[opening & (d <= 0.3 * radius)] = (10, 10, 12)
    hx, hy = cx + 0.25 * radius, cy - 0.3 * radius
    img[np.hypot(xs - hx, ys - hy) <= 1.6] = (250, 250, 250)
    lashes = inside_x & (np.abs(ys - upper) < 1.5)
    img[lashes] = (30, 25, 25)
    img += rng.normal(0, 3, img.shape)
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), corners


IRISES = [  # (iris sRGB, skin sRGB): grey-green on fair skin, blue, brown on dark skin, near-black on dark skin
    ((105, 110, 85), (220, 180, 160)),
    ((95, 125, 160), (225, 190, 175)),
    ((95, 60, 35), (120, 80, 60)),
    ((40, 28, 22), (90, 60, 45)),
]


@pytest.mark.parametrize(("iris", "skin"), IRISES)
@pytest.mark.parametrize("radius", [6.0, 9.0, 16.0])
def test_iris_colour_and_radius_recovered_from_a_drawn_eye(iris, skin, radius):
    img, corners = draw_eye(iris, skin, radius=radius, width=radius / 0.23, centre=(100.0, 62.0))
    found = measure_iris(srgb_to_linear(img / 255.0), corners)
    assert found is not None
    truth = srgb_to_linear(np.array(iris) / 255.0)
    assert float(delta_e76(found.colour, truth)) < 4.0
    assert found.radius_px == pytest.approx(radius, rel=0.1)
    assert np.linalg.norm(found.centre_px - [100.0, 62.0]) < 0.2 * radius
    assert found.confidence > 0.3


def test_a_prior_pulls_the_search_but_the_disc_wins():
    img, corners = draw_eye((105, 110, 85), radius=9.0, width=40.0, centre=(104.0, 62.0))
    found = measure_iris(srgb_to_linear(img / 255.0), corners, prior=np.array([100.0, 63.0]))
    assert np.linalg.norm(found.centre_px - [104.0, 62.0]) < 1.5


def test_gain_multiplies_the_linear_colour():
    img, corners = draw_eye((105, 110, 85))
    linear = srgb_to_linear(img / 255.0)
    plain = measure_iris(linear, corners)
    gained = measure_iris(linear, corners, gain=np.array([1.2, 1.0, 0.8]))
    np.testing.assert_allclose(gained.colour, plain.colour * [1.2, 1.0, 0.8], rtol=1e-5)


def test_fusion_drops_an_outlier_and_weights_by_confidence():
    grey_green = srgb_to_linear(np.array([105, 110, 85]) / 255.0)
    colours = np.array([grey_green, grey_green * 1.05, [0.6, 0.6, 0.6]])  # the third: the search hit the sclera
    fused = fuse_colour(colours, np.array([1.0, 0.5, 0.4]))
    assert float(delta_e76(fused, grey_green)) < 2.0


def test_sphere_uv_front_pole_is_the_centre_and_back_pole_the_rim():
    np.testing.assert_allclose(sphere_uv(np.array([0.0, 0.0, 1.0])), [0.5, 0.5])
    side = sphere_uv(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(side, [[0.5 + 0.5 * np.sin(np.pi / 4), 0.5], [0.5, 0.5 + 0.5 * np.sin(np.pi / 4)]])
    uvs = eyeball_loop_uvs()
    verts, faces = uv_sphere()
    assert uvs.shape == (faces.size, 2) and np.isfinite(uvs).all()
    rho = np.linalg.norm(uvs - 0.5, axis=1)
    assert rho.max() <= 0.5 + 1e-6
    back = faces.ravel() == len(verts) - 1
    assert np.allclose(rho[back], 0.5, atol=1e-3)


def test_texture_has_the_iris_where_the_front_pole_maps():
    colour = srgb_to_linear(np.array([105, 110, 85]) / 255.0)
    image = eye_texture(colour, 6.0, 12.0, size=256)
    angle = np.arcsin(6.0 / 12.0)
    theta, phi, _ = texel_angles(256)
    s = iris_share(theta, angle)

    def texel(direction) -> np.ndarray:
        u, v = sphere_uv(np.asarray(direction, np.float64))
        return image[int((1 - v) * 256), int(u * 256)]  # row 0 at the top (v = 1)

    assert texel([0.0, 0.0, 1.0]).max() < 0.03  # the pupil on the front pole
    for az in np.radians([0, 90, 200, 300]):
        tilt = np.arcsin(0.6 * np.sin(angle))  # 0.6 of the iris radius off the axis
        d = [np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt)]
        assert float(delta_e76(texel(d), colour)) < 12  # the iris (fibres vary it a little)
    assert float(delta_e76(texture_iris_colour(image, angle), colour)) < 0.5  # its median is the colour
    sclera = image[(s > 1.5) & (theta < np.pi / 2)]
    assert np.median(sclera, axis=0).min() > 0.45  # off-white around it
    ring = image[(s > 0.97) & (s < 1.02)]
    assert np.median(ring @ [0.2126, 0.7152, 0.0722]) < 0.6 * (colour @ [0.2126, 0.7152, 0.0722])  # limbal ring
    assert (s[(theta < np.pi / 2)] > PUPIL_SHARE).any()


def test_photo_of_a_fitted_head_gives_its_iris_in_millimetres(procedural_model):
    from facesmith.training.synthetic import sample_head

    head = sample_head(procedural_model, np.random.default_rng(3))
    head["pose"][3:] = 0.0  # eyes straight ahead: the pupils are where the fit puts them
    fit = exact_fit(procedural_model, head, 512)
    geometry = eye_geometry(procedural_model, procedural_model.v_template)
    # Draw each eye where the fit's landmarks put it, the iris 6 mm across its radius at the camera's scale.
    tips = fit.vertices[geometry.pupil_vertices]
    lateral = (tips[1] - tips[0]) / np.linalg.norm(tips[1] - tips[0])
    span = fit.camera.project(np.stack([tips.mean(0) - 0.005 * lateral, tips.mean(0) + 0.005 * lateral]))
    per_mm = np.linalg.norm(span[1] - span[0]) / 10
    img = np.empty((512, 512, 3), np.uint8)
    img[:] = (200, 160, 140)
    pupils = fit.camera.project(tips)
    for eye, (a, b) in enumerate(((36, 39), (42, 45))):
        corners = fit.model_landmarks68_px[[a, b]]
        width = np.linalg.norm(corners[1] - corners[0])
        patch, _ = draw_eye((95, 125, 160), (200, 160, 140), radius=6.0 * per_mm, width=width,
                            centre=(45.0, 30.0), size=(90, 60), seed=eye)  # fmt: skip
        x0, y0 = np.round(pupils[eye] - [45, 30]).astype(int)
        img[y0 : y0 + 60, x0 : x0 + 90] = patch
    fit = dataclasses.replace(fit, model_landmarks68_px=_moved_corners(fit.model_landmarks68_px, pupils))
    found = measure_photo(img, 1.0, fit, geometry)
    assert {m.eye for m in found} == {"right", "left"}
    for m in found:
        assert m.radius_mm == pytest.approx(6.0, rel=0.12)
    eyes = bake_eyes([(img, 1.0, fit)], geometry)
    assert float(delta_e76(eyes.iris_colour, srgb_to_linear(np.array([95, 125, 160]) / 255.0))) < 4
    assert IRIS_RADIUS_MM[0] <= eyes.iris_radius_mm <= IRIS_RADIUS_MM[1]
    assert eyes.image.shape == (512, 512, 3) and not eyes.notes


def _moved_corners(ibug: np.ndarray, pupils: np.ndarray) -> np.ndarray:
    """The 68 points with each eye's corners where draw_eye puts them around its pupil (as a detector would
    find them in the drawn photo)."""
    out = np.array(ibug, np.float64)
    for eye, (a, b) in enumerate(((36, 39), (42, 45))):
        half = np.linalg.norm(out[b] - out[a]) / 2
        out[a] = pupils[eye] + [-half - 2, 1.5]
        out[b] = pupils[eye] + [half + 2, -1.5]
    return out


def test_no_iris_found_gives_the_default_eye(procedural_model):
    from facesmith.training.synthetic import sample_head

    fit = exact_fit(procedural_model, sample_head(procedural_model, np.random.default_rng(1)), 256)
    blank = np.full((256, 256, 3), 128, np.uint8)  # nothing to find: no contrast anywhere
    eyes = bake_eyes([(blank, 1.0, fit)], EyeGeometry(np.array([-1, -1])))
    np.testing.assert_allclose(eyes.iris_colour, FALLBACK_IRIS_LINEAR, atol=1e-6)
    assert eyes.notes and 0.01 < float(linear_to_srgb(eyes.image).mean()) < 1
