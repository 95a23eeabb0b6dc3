"""Colour constancy (texture/colour.py): the Planckian white, CIELAB and ITA, the gain's MAP estimate, and the
bake's albedo staying put when a portrait is re-lit in the image."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.images import load_photo
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import Reconstructor
from facesmith.inference.texture import colour
from facesmith.inference.texture.albedo import TextureBaker
from facesmith.inference.texture.maps import linear_to_srgb, srgb_to_linear

from ..conftest import SHARED

FACES = SHARED / "data" / "faces"


def test_planckian_white_and_gains():
    d65 = colour.planckian_rgb(6500)
    assert np.abs(d65 / d65.mean() - 1).max() < 0.06  # a 6500 K black body is nearly sRGB's white
    warm, cool = colour.white_balance_gain(3000), colour.white_balance_gain(7500)
    assert warm[0] > 1.3 and warm[2] < 0.5  # tungsten: red up, blue down
    assert cool[2] > 1.0 > cool[0]
    np.testing.assert_allclose(colour.white_balance_gain(6500), 1.0, atol=1e-9)
    for gain in (warm, cool):
        assert gain @ colour.LUMINANCE == pytest.approx(1.0)


def test_lab_and_ita():
    np.testing.assert_allclose(colour.linear_to_lab(np.ones(3)), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(colour.linear_to_lab(np.zeros(3)), [0, 0, 0], atol=1e-9)
    light, dark = np.array([0.6, 0.42, 0.33]), np.array([0.09, 0.05, 0.035])
    assert colour.ita_degrees(light) > 41 and colour.ita_degrees(dark) < -30
    assert colour.delta_e76(light, light) == 0


def _prior() -> colour.ColourPrior:
    prior = colour.ColourPrior.load()
    assert prior is not None, "assets/colour_prior.npz is missing (python -m facesmith.training.colour_prior)"
    return prior


def test_gain_follows_a_warm_light_but_not_a_dark_skin():
    prior = _prior()
    sclera = np.exp(prior.joint_mean[3:]) * np.ones((200, 3))
    skin = np.exp(prior.joint_mean[:3])
    # A tungsten light: skin and eye whites shift together, so the colour shift is read as the light's.
    warm = colour.white_balance_gain(3000)
    cues = colour.photo_cues(prior, skin * warm, sclera * warm, colour.Scene.none())
    log_gain, _ = colour.estimate_gain(cues, prior.light_cov, np.log(warm) @ colour.LUMINANCE)
    chroma = lambda v: v - v.mean()  # noqa: E731
    assert np.abs(chroma(log_gain) - chroma(np.log(warm))).max() < 0.1
    # Darker skin and eye whites: no exposure is read into them (that would lighten dark skin).
    no_scene = colour.Scene.none()
    assert colour.exposure(prior, no_scene) == 0.0
    dark = colour.photo_cues(prior, skin * 0.25, sclera * 0.5, no_scene)
    log_gain, _ = colour.estimate_gain(dark, prior.light_cov, 0.0)
    assert log_gain @ colour.LUMINANCE == pytest.approx(0.0, abs=1e-12)
    # A whole photo a stop darker (the scene too): most of the stop is read as exposure.
    scene = colour.Scene(np.zeros(3), prior.scene_keys - np.log(2), 0.0, 0.5)
    assert -np.log(2) < colour.exposure(prior, scene) < -0.5 * np.log(2)
    # A stop brighter, with most of the scene clipped: the part that did not clip still reads most of the stop.
    bright = colour.Scene(np.zeros(3), np.r_[prior.scene_keys[:3] + np.log(2), np.zeros(4)], 0.8, 0.5)
    assert 0.5 * np.log(2) < colour.exposure(prior, bright) < np.log(2)


def test_mixture_prior_keeps_a_skin_colour_and_corrects_a_cast():
    """Skin and eye whites a little yellower than average (within how people differ) are mostly kept: the balanced
    camera's prior explains them best; a 3000 K cast is corrected (the uncorrected-light prior explains it)."""
    prior = _prior()
    skin, sclera = np.exp(prior.joint_mean[:3]), np.exp(prior.joint_mean[3:]) * np.ones((200, 3))
    yellower = np.array([1.0, 1.0, 0.9])
    cues = colour.photo_cues(prior, skin * yellower, sclera * yellower, colour.Scene.none())
    mixed = colour.photo_gain(cues, prior, 0.0)
    uncorrected_only, _ = colour.estimate_gain(cues, prior.light_cov)
    assert np.abs(mixed).max() < 0.5 * np.abs(uncorrected_only).max()
    warm = colour.white_balance_gain(3000)
    cast = colour.photo_gain(colour.photo_cues(prior, skin * warm, sclera * warm, colour.Scene.none()), prior, 0.0)
    assert cast[0] - cast[2] > 0.8 * (np.log(warm[0]) - np.log(warm[2]))


def test_estimate_without_cues_is_the_prior_given_the_level():
    prior = _prior()
    log_gain, _ = colour.estimate_gain([], prior.light_cov, 0.3)
    w, cov = colour.LUMINANCE, prior.light_cov
    np.testing.assert_allclose(log_gain, cov @ w * 0.3 / (w @ cov @ w), atol=1e-9)  # the Gaussian's conditional mean
    assert log_gain @ w == pytest.approx(0.3)


def test_sclera_pixels_are_the_bright_part_of_the_eye():
    image = np.full((40, 60, 3), 0.2, np.float32)  # skin
    image[15:25, 10:50] = [0.6, 0.55, 0.5]  # eye white
    image[12:28, 24:36] = [0.05, 0.03, 0.02]  # iris
    poly = np.array([[10, 20], [30, 14], [50, 20], [30, 26]], float)
    found = colour.sclera_pixels(image, [poly])
    assert len(found) > 20
    np.testing.assert_allclose(np.median(found, axis=0), [0.6, 0.55, 0.5], atol=1e-6)


def test_shipped_prior_loads():
    prior = colour.ColourPrior.load()
    assert prior is not None, "assets/colour_prior.npz is missing (python -m facesmith.training.colour_prior)"
    assert np.all(np.linalg.eigvalsh(prior.joint_cov) > 0) and np.isfinite(prior.scene_keys).all()
    assert 0.15 < np.exp(prior.joint_mean[1]) < 0.4  # the studio's median de-lit skin, green channel


def _relit(rgb: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return np.round(linear_to_srgb(np.clip(srgb_to_linear(rgb / 255.0) * gain, 0, 1)) * 255).astype(np.uint8)


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_relit_portrait_keeps_its_albedo(dev_model):
    """A warm, dim re-lighting of a real portrait moves today's albedo far; with the gain divided out it stays."""
    path = FACES / "002_03.jpg"
    with Reconstructor(DEFAULTS, dev_model) as rec:
        fit = rec.fit([path]).photos[0]
    photo = load_photo(path)
    warm_dim = colour.white_balance_gain(3000) / 2
    medians = {}
    for constancy in (True, False):
        baker = TextureBaker(dev_model, 256, colour_constancy=constancy)
        for name, rgb in (("original", photo.rgb), ("relit", _relit(photo.rgb, warm_dim))):
            tex = baker.photo_texture(rgb, photo.scale, fit)
            keep = (tex.weight > 0) & tex.skin
            medians[constancy, name] = np.median(tex.albedo[keep], axis=0)
        if constancy:
            assert "scene" in tex.cues and "sclera" in tex.cues[0]
    moved = {c: float(colour.delta_e76(medians[c, "relit"], medians[c, "original"])) for c in (True, False)}
    assert moved[False] > 25
    assert moved[True] < 8


def test_a_scene_clipped_all_over_reads_brighter_not_darker():
    """Almost all of the scene clipped (an overexposed pale backdrop): whatever dark corner is left must not decide the
    exposure; the clipped median is a lower bound on it, so the photo is read as brighter than the studio's."""
    prior = _prior()
    keys = np.r_[
        prior.scene_keys[0] - 2.0, np.zeros(len(prior.scene_keys) - 1)
    ]  # a dark shirt's few percent, then white
    assert colour.exposure(prior, colour.Scene(np.zeros(3), keys, 0.95, 0.5)) > 0


def test_black_and_white_photos_are_told_from_colour_ones():
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.random((60, 80, 1)), 3, axis=2)
    # JPEG's chroma noise in a grey photo: a level or two of 8-bit sRGB per channel
    noisy = srgb_to_linear(np.clip(linear_to_srgb(grey) + rng.normal(0, 1.0 / 255, grey.shape), 0, 1))
    assert colour.is_monochrome(grey) and colour.is_monochrome(noisy)
    skin = np.broadcast_to(np.array([0.45, 0.25, 0.18]), (60, 80, 3)) * (0.5 + grey)
    assert not colour.is_monochrome(skin)


def test_the_skin_model_gives_a_skin_colour_of_any_lightness():
    prior = colour.ColourPrior.load()
    colours = [prior.skin_at(lum) for lum in (0.03, 0.1, 0.25, 0.45)]
    for lum, c in zip((0.03, 0.1, 0.25, 0.45), colours, strict=True):
        assert c @ colour.LUMINANCE == pytest.approx(lum) and c[0] > c[1] > c[2]  # skin: red over green over blue
    ita = colour.ita_degrees(np.array(colours))
    assert np.all(np.diff(ita) > 0)  # lighter skin, higher ITA (and never grey: b* > 0)
    assert np.all(colour.linear_to_lab(np.array(colours))[:, 2] > 5)


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_a_black_and_white_portrait_gets_a_skin_colour_near_its_colour_photo(dev_model):
    """The portrait in black and white: the grey albedo is far from the colour photo's; the skin model's colour at
    its lightness is near it, and the texture says where its colour came from."""
    path = FACES / "002_03.jpg"
    with Reconstructor(DEFAULTS, dev_model) as rec:
        fit = rec.fit([path]).photos[0]
    photo = load_photo(path)
    grey = np.repeat(
        np.round(linear_to_srgb(srgb_to_linear(photo.rgb / 255.0) @ colour.LUMINANCE) * 255).astype(np.uint8)[..., None],
        3, axis=2,
    )  # fmt: skip
    baker = TextureBaker(dev_model, 256)
    medians = {}
    for name, rgb in (("colour", photo.rgb), ("grey", grey)):
        tex = baker.photo_texture(rgb, photo.scale, fit)
        medians[name] = np.median(tex.albedo[(tex.weight > 0) & tex.skin], axis=0)
    assert tex.cues == ("monochrome",) and any("black-and-white" in w for w in tex.warnings)
    grey_albedo = np.full(3, medians["grey"] @ colour.LUMINANCE)
    far = colour.delta_e76(grey_albedo, medians["colour"])
    assert far > 10 and colour.delta_e76(medians["grey"], medians["colour"]) < 0.5 * far
