"""The SH light fit's natural-light prior (texture/light.py, assets/light_prior.npz) and its builder
(training/light_prior.py)."""

from __future__ import annotations

import numpy as np

from facesmith.inference.texture.albedo import TextureBaker, fit_skin_light, sh_basis
from facesmith.inference.texture.light import LightPrior, fit_sh
from facesmith.training import light_prior as builder


def hemisphere(n: int, seed: int = 0) -> np.ndarray:
    normals = np.random.default_rng(seed).normal(size=(n, 3))
    normals[:, 2] = np.abs(normals[:, 2])  # the side a camera sees
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def natural_light() -> np.ndarray:
    light = np.zeros((9, 3))
    light[0], light[2], light[3] = 2.0, 0.3, 0.4  # ambient, from above, from the front
    return light


def test_the_shipped_prior_is_a_gaussian_of_lit_faces():
    prior = LightPrior.load()
    assert prior is not None and prior.mean.shape == (8,) and prior.cov.shape == (8, 8)
    assert np.linalg.eigvalsh(prior.cov).min() > 0
    assert prior.mean[1] > 0.05 and prior.mean[2] > 0.0  # light comes from above and, for lit faces, the front


def test_without_a_prior_the_fit_is_least_squares():
    basis = sh_basis(hemisphere(2000))
    colour = basis @ natural_light() + np.random.default_rng(1).normal(0, 0.01, (2000, 3))
    np.testing.assert_allclose(fit_sh(basis, colour, None), np.linalg.lstsq(basis, colour, rcond=None)[0])


def test_the_prior_keeps_clean_shading_and_resists_dark_patches():
    """Beards, glasses frames, hair edges the skin test let through: dark patches over a few hundred noisy skin
    texels (a blurry, compressed photo). Free, the second-order terms bend the shading into them (the albedo then
    gets pale blotches: its worst texels off by 0.7-1.4 here); under the prior the shading stays closer to the
    light's everywhere. A clean natural light is left as it is."""
    prior = LightPrior.load()
    normals = hemisphere(4000)
    basis = sh_basis(normals)
    truth = basis @ natural_light()
    clean = fit_sh(basis, truth * 0.6, prior) / 0.6
    assert np.abs(basis @ clean / truth - 1).max() < 0.05
    for seed in range(4):
        rng = np.random.default_rng(seed)
        normals = hemisphere(400, seed)
        basis = sh_basis(normals)
        truth = basis @ natural_light()
        dark = (normals @ hemisphere(6, seed + 10).T > 0.93).any(axis=1)
        colour = truth * (0.6 * np.where(dark, 0.3, 1.0) * (1 + rng.normal(0, 0.15, 400)))[:, None]
        errors = {}
        for name, p in (("free", None), ("prior", prior)):
            shading = basis @ fit_sh(basis, colour, p)[:, 1] / truth[:, 1]
            errors[name] = np.abs(shading / np.median(shading) - 1)
        assert errors["prior"].max() < errors["free"].max(), seed
        assert np.median(errors["prior"]) < np.median(errors["free"]), seed


def test_the_baker_uses_the_prior_and_skin_light_runs_without_it(dev_model):
    baker = TextureBaker(dev_model, 64)
    assert baker.light_prior is not None
    basis = sh_basis(hemisphere(1000))
    colour = basis @ natural_light() * 0.5
    on = fit_skin_light(basis, colour, np.ones(1000, bool), np.ones(1000, bool), baker.light_prior)
    off = fit_skin_light(basis, colour, np.ones(1000, bool), np.ones(1000, bool))
    assert np.abs(on[1] / off[1] - 1).max() < 0.05  # a natural light: the same shading either way


def test_builder_reads_light_from_above_and_keeps_lit_faces():
    """A sky brighter than the ground: the irradiance's y coefficient (up) comes out positive in every turn. A
    small sun on the horizon: only turns with the sun on the camera's side are kept, so +z (towards the camera)
    comes out positive on average."""
    rows, cols = builder.MAP_SIZE
    sky = np.concatenate([np.full((rows // 2, cols, 3), 3.0), np.full((rows - rows // 2, cols, 3), 0.5)])
    lit = builder.shape_samples([sky])
    assert len(lit) and lit[:, 1].min() > 0.1  # SH index 2 (y) over the constant: light from above
    sun = np.full((rows, cols, 3), 0.1)
    sun[rows // 2 - 1 : rows // 2 + 1, :2] = 200.0
    kept = builder.shape_samples([sun])
    turns = 360 / builder.YAW_STEP * len(builder.TILTS) * 2
    assert 0.3 * turns < len(kept) < 0.7 * turns and kept[:, 2].mean() > 0.2
