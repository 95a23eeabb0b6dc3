"""Displacement from shading: the linearised shading model and its integration."""

from __future__ import annotations

import numpy as np

from facesmith.inference.texture.albedo import SH_CONSTANTS, sh_basis
from facesmith.inference.texture.displacement import (
    achromatic_residual,
    integrate_relief,
    log_residual,
    sh_gradient,
    shading_slopes,
    uv_pullback,
)

RNG = np.random.default_rng(3)
LIGHT = np.array([0.9, 0.25, -0.3, 0.6, 0.05, -0.1, 0.08, 0.04, -0.05])  # ambient + key from upper left


def test_sh_gradient_matches_finite_differences():
    normals = RNG.normal(size=(50, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    grad = sh_gradient(normals, LIGHT, SH_CONSTANTS)
    eps = 1e-6
    for k in range(3):
        step = np.zeros(3)
        step[k] = eps
        numeric = (sh_basis(normals + step) @ LIGHT - sh_basis(normals - step) @ LIGHT) / (2 * eps)
        np.testing.assert_allclose(grad[:, k], numeric, rtol=1e-5, atol=1e-8)


def test_slopes_predict_the_shading_of_a_tilted_height_field():
    """A small height gradient, given in texel coordinates of a skewed UV map on a tilted triangle, changes
    the SH shading by −a·∇h to first order."""
    vertices = np.array([[0.0, 0.0, 0.0], [0.01, 0.002, 0.004], [0.001, 0.012, -0.003]])  # metres
    corners = np.array([[[10.0, 50.0], [40.0, 48.0], [15.0, 10.0]]])  # texels: skewed, rows run down
    pullback = uv_pullback(vertices, np.array([[0, 1, 2]]), corners)[0]
    jacobian_t = np.linalg.pinv(pullback)  # J (3, 2): pullback is G⁻¹Jᵀ, whose pseudo-inverse is J
    normal = np.cross(vertices[1] - vertices[0], vertices[2] - vertices[0])
    normal /= np.linalg.norm(normal)
    shading = sh_basis(normal[None]) @ LIGHT
    a = shading_slopes(pullback[None], shading, sh_gradient(normal[None], LIGHT, SH_CONSTANTS))[0]
    metric = jacobian_t.T @ jacobian_t
    for gradient in (np.array([2e-6, 0.0]), np.array([0.0, -3e-6]), np.array([1.5e-6, 1e-6])):  # metres per texel
        surface_gradient = jacobian_t @ np.linalg.solve(metric, gradient)
        tilted = normal - surface_gradient
        tilted /= np.linalg.norm(tilted)
        change = (sh_basis(tilted[None]) @ LIGHT - shading) / shading
        np.testing.assert_allclose(change, -a @ gradient, rtol=0.02)


def _known_relief(size: int) -> np.ndarray:
    import cv2

    white = RNG.normal(size=(size, size)).astype(np.float32)
    return cv2.GaussianBlur(white, (0, 0), 2.0) - cv2.GaussianBlur(white, (0, 0), 6.0)


def _residual(height: np.ndarray, a: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(height)
    return -(a[0] * gx + a[1] * gy)


def test_integration_recovers_relief_from_one_and_two_lights():
    size = 96
    height = _known_relief(size)
    inside = np.zeros((size, size), bool)
    inside[8:-8, 8:-8] = True
    lights = [np.array([0.8, 0.3]), np.array([-0.2, 0.9])]
    fields = [np.broadcast_to(a, (size, size, 2)) for a in lights]
    residuals = [_residual(height, a) + RNG.normal(0, 0.02, (size, size)) for a in lights]
    weights = [inside.astype(float)] * 2

    def corr(h: np.ndarray) -> float:
        return float(np.corrcoef(h[inside], height[inside])[0, 1])

    one = corr(integrate_relief(residuals[:1], fields[:1], weights[:1]))
    two = corr(integrate_relief(residuals, fields, weights))
    assert one > 0.75 and two > 0.93 and two > one
    assert not integrate_relief(residuals, fields, [np.zeros((size, size))] * 2).any()


def test_log_residual_ignores_what_is_not_seen():
    albedo = np.full((64, 64, 3), 0.5, np.float32)
    albedo[:, 32:] = 0.05  # a dark unseen half must not pull the seen half's local mean down
    seen = np.zeros((64, 64), bool)
    seen[:, :32] = True
    residual = log_residual(albedo, seen, 4.0)
    assert np.abs(residual).max() < 1e-5


def test_achromatic_residual_keeps_shading_and_drops_coloured_blotches():
    """Relief shades the skin grey-wise (all channels by one factor); a freckle or a red patch changes its colour too.
    The luminance residual reads both as relief; the achromatic one keeps the first and drops most of the second."""
    size = 96
    yy, xx = np.mgrid[0:size, 0:size] / size
    skin = np.ones((size, size, 3), np.float32) * np.array([0.45, 0.3, 0.24], np.float32)
    shading = 1 + 0.06 * np.sin(2 * np.pi * 9 * xx) * np.sin(2 * np.pi * 7 * yy)  # relief's, the same in R, G, B
    rng = np.random.default_rng(0)
    blotches = np.zeros((size, size), np.float32)
    for cx, cy in rng.uniform(0.1, 0.9, size=(25, 2)):
        blotches += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.02**2))
    freckle = np.stack([1 - 0.15 * blotches, 1 - 0.3 * blotches, 1 - 0.35 * blotches], axis=-1)  # darker, browner
    seen = np.ones((size, size), bool)
    inner = (slice(10, -10), slice(10, -10))

    def share(signal: np.ndarray, albedo: np.ndarray, residual) -> float:
        """How much of the residual of `albedo` is the residual of `signal` alone (1: it passes, 0: it is dropped)."""
        r = residual(albedo, seen, 4.0)[inner].ravel()
        s = log_residual(signal, seen, 4.0)[inner].ravel()
        return float(r @ s / (s @ s))

    shaded, blotched = skin * shading[..., None], skin * freckle
    both = skin * shading[..., None] * freckle
    assert share(blotched, both, log_residual) > 0.9  # the luminance residual reads the freckles as relief
    assert share(blotched, both, achromatic_residual) < 0.2
    assert share(shaded, both, achromatic_residual) > 0.8


def test_unlit_texels_give_no_relief_equation():
    """Where the light barely reaches, the relative gradient ∇S/S has no bound: those texels get a = 0 (a few of them
    made the integration diverge and a whole face got no relief)."""
    n = 200
    pullback = np.tile(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]), (n, 1, 1))
    gradient = np.tile([0.3, -0.2, 0.1], (n, 1))
    shading = np.full(n, 0.8)
    shading[:5] = 1e-5  # nearly unlit
    a = shading_slopes(pullback, shading, gradient)
    assert np.all(a[:5] == 0)
    np.testing.assert_allclose(a[5:], gradient[5:, :2] / 0.8)
