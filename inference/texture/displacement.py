"""Displacement from shading: the de-lit luminance residual read as the shading of fine relief.

Under the fitted SH light S(n), a height field h along the normal tilts the normal by −∇ₛh (its surface
gradient), so the relative shading change is r ≈ −(∇S(n) / S(n)) · ∇ₛh = −a · ∇h, with a per texel
(`shading_slopes`) from the smooth mesh's normal, its UV Jacobian and the light. Each photo gives one
such equation per seen skin texel; h is the regularised least-squares solution over all of them
(`integrate_relief`): gradient-domain integration along each photo's light direction, where several
photos under different light constrain more directions.

Why not a calibrated high-pass ("darker is deeper", the first version): the residual measures the
height's slope along the light, not the height, so a high-pass of it correlates with the true relief at
≈ 0 (bench/textures.py reports both in the same run).
"""

from __future__ import annotations

import numpy as np

RESIDUAL_SIGMA_1024 = 4.0  # texels at 1024²: shading varying slower than this is the smooth model's
RESIDUAL_LIMIT = 0.2  # |log residual| beyond this is an albedo edge or a highlight, not relief
RIDGE = 0.01  # pull towards h = 0, relative to the median |a|²: keeps unconstrained directions flat
SMOOTHNESS = 0.03  # gradient penalty, relative to the median |a|²
EDGE_MARGIN_1024 = 3  # texels of skin given up next to non-skin
MIN_RELATIVE_SHADING = 0.2  # of the median: less light than this gives no relief equation (the albedo's clamp too)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)


def uv_jacobian(vertices: np.ndarray, faces: np.ndarray, texel_corners: np.ndarray) -> np.ndarray:
    """(F, 3, 2) per triangle: J, the metres moved on the mesh per texel along the texel column and row."""
    p = vertices[faces]
    dp = np.stack([p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], axis=2)  # (F, 3, 2)
    dt = np.stack([texel_corners[:, 1] - texel_corners[:, 0], texel_corners[:, 2] - texel_corners[:, 0]], axis=2)
    det = dt[:, 0, 0] * dt[:, 1, 1] - dt[:, 0, 1] * dt[:, 1, 0]
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    inverse = np.stack([np.stack([dt[:, 1, 1], -dt[:, 0, 1]], 1), np.stack([-dt[:, 1, 0], dt[:, 0, 0]], 1)], 1)
    return dp @ (inverse / det[:, None, None])


def uv_pullback(vertices: np.ndarray, faces: np.ndarray, texel_corners: np.ndarray) -> np.ndarray:
    """(F, 2, 3) per triangle: maps a 3D tangent vector to texel coordinates through the UV map's metric
    (G⁻¹ Jᵀ, with J from uv_jacobian)."""
    jacobian = uv_jacobian(vertices, faces, texel_corners)
    metric = np.swapaxes(jacobian, 1, 2) @ jacobian + 1e-18 * np.eye(2)
    return np.linalg.solve(metric, np.swapaxes(jacobian, 1, 2))


def sh_gradient(normals: np.ndarray, coefficients: np.ndarray, constants: np.ndarray) -> np.ndarray:
    """(N, 3): gradient with respect to n of Σₖ cₖ Bₖ(n) for the 9-term basis of albedo.sh_basis."""
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    c = coefficients * constants
    return np.stack([
        c[1] + c[4] * y + c[5] * z + 2 * c[7] * x,
        c[2] + c[4] * x + c[6] * z - 2 * c[7] * y,
        c[3] + c[5] * x + c[6] * y + 6 * c[8] * z,
    ], axis=1)  # fmt: skip


def shading_slopes(pullback: np.ndarray, shading: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """(N, 2) vectors a with r = −a · (∂h/∂col, ∂h/∂row): the light's relative gradient in the tangent plane,
    pulled back to texel coordinates (`pullback` (N, 2, 3) from uv_pullback, per texel).

    Zero where the light barely reaches (shading under MIN_RELATIVE_SHADING × the median): there the relative
    gradient grows without bound, and a few such texels made the integration diverge — a dark-skinned face under a
    key light from the side (5 % of texels nearly unlit) got no relief at all (bench/detail.py, old_dark)."""
    floor = MIN_RELATIVE_SHADING * float(np.median(shading)) if len(shading) else 0.0
    lit = shading > max(floor, 1e-6)
    g = np.where(lit[:, None], gradient / np.where(lit, shading, 1.0)[:, None], 0.0)
    return (pullback * g[:, None, :]).sum(axis=2)


def high_pass(values: np.ndarray, seen: np.ndarray, sigma: float) -> np.ndarray:
    """`values` (H, W) less their Gaussian blur over seen texels (normalised, so unseen texels do not leak in)."""
    import cv2

    weight = seen.astype(np.float32)
    values = values.astype(np.float32)
    base = cv2.GaussianBlur(values * weight, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-6)
    return (values - base) * (weight > 0)


def log_residual(albedo: np.ndarray, seen: np.ndarray, sigma: float) -> np.ndarray:
    """High-pass of the log luminance over seen texels."""
    return high_pass(np.log(np.clip(albedo @ LUMINANCE, 1e-4, None)), seen, sigma)


def achromatic_residual(albedo: np.ndarray, seen: np.ndarray, sigma: float) -> np.ndarray:
    """log_residual less the part of it that the high-passed log chromaticity (log R/G, log B/G) predicts.

    Relief under a white light changes the luminance only; what changes the skin's colour as well (freckles, a
    redder patch, stubble, the pigment's blotches) is albedo, and its luminance share is fitted per photo by least
    squares over the seen texels and taken out. Measured (bench/detail.py): the false relief a head without any
    relief shows drops by about a tenth on renders of real skin textures and by a fifth to a quarter on ordinary
    photos, and the correlation with a known relief does not drop."""
    lum = log_residual(albedo, seen, sigma)
    logs = np.log(np.clip(albedo, 1e-4, None))
    chroma = np.stack([high_pass(logs[..., c] - logs[..., 1], seen, sigma) for c in (0, 2)], axis=-1)
    fit = seen & (np.abs(lum) < RESIDUAL_LIMIT)
    if fit.sum() < 16:
        return lum
    beta = np.linalg.lstsq(chroma[fit].astype(np.float64), lum[fit].astype(np.float64), rcond=None)[0]
    return ((lum - chroma @ beta.astype(np.float32)) * seen).astype(np.float32)


def _central(h: np.ndarray, axis: int) -> np.ndarray:
    """Central difference along `axis` (1: columns, 0: rows), h taken as zero beyond the grid. Its adjoint
    is its negative, which the normal equations below use."""
    out = np.zeros_like(h)
    if axis == 1:
        out[:, 1:-1] = h[:, 2:] - h[:, :-2]
        out[:, 0], out[:, -1] = h[:, 1], -h[:, -2]
    else:
        out[1:-1] = h[2:] - h[:-2]
        out[0], out[-1] = h[1], -h[-2]
    return 0.5 * out


def _smoothness(h: np.ndarray) -> np.ndarray:
    """Gᵀ G h for forward differences G inside the grid (the Neumann Laplacian, negated)."""
    out = np.zeros_like(h)
    for axis in (0, 1):
        d = np.diff(h, axis=axis)
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] -= d
        out[tuple(hi)] += d
    return out


def _conjugate_gradient(
    apply, rhs: np.ndarray, inverse_diagonal: np.ndarray, rtol: float, iterations: int
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients for a symmetric positive definite operator `apply`."""
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = inverse_diagonal * r
    p = z.copy()
    rz = float((r * z).sum())
    stop = rtol * float(np.sqrt((rhs * rhs).sum()))
    for _ in range(iterations):
        q = apply(p)
        step = rz / float((p * q).sum())
        x += step * p
        r -= step * q
        if float(np.sqrt((r * r).sum())) <= stop:
            break
        z = inverse_diagonal * r
        rz, previous = float((r * z).sum()), rz
        p = z + (rz / previous) * p
    return x


def integrate_relief(
    residuals: list[np.ndarray], slopes: list[np.ndarray], weights: list[np.ndarray],
    ridge: float = RIDGE, smoothness: float = SMOOTHNESS, rtol: float = 1e-2, iterations: int = 300,
) -> np.ndarray:  # fmt: skip
    """Height (texel grid, in the units of 1/|a|: metres) minimising, over photos p and texels,
    Σ wₚ (aₚ·∇h + rₚ)² + λ h² + μ |∇h|²; zero outside the bounding box of the weighted texels.

    λ and μ scale with the weighted median |a|², so the result does not depend on the light's strength.
    The photos' terms are summed into one 2×2 field (Σ w a aᵀ), so the cost does not grow with them."""
    used = np.logical_or.reduce([w > 0 for w in weights])
    out = np.zeros(used.shape, np.float32)
    if used.sum() < 16:
        return out
    rows, cols = np.nonzero(used)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    axx, axy, ayy, bx, by = (np.zeros(used[box].shape, np.float32) for _ in range(5))
    magnitude = []
    for r, a, w in zip(residuals, slopes, weights, strict=True):
        ax, ay, wv, rv = a[box][..., 0], a[box][..., 1], w[box], r[box]
        axx += wv * ax * ax
        axy += wv * ax * ay
        ayy += wv * ay * ay
        bx += wv * ax * rv
        by += wv * ay * rv
        magnitude.append((ax * ax + ay * ay)[wv > 0])
    scale = float(np.median(np.concatenate(magnitude)))
    # Texels no photo weighs are pulled towards zero harder: with only the smoothness term reaching
    # them, conjugate gradients would spend most of its iterations there (measured: 220 vs 110).
    lam = np.where(used[box], ridge * scale, 0.1 * scale).astype(np.float32)
    mu = smoothness * scale

    def apply(h: np.ndarray) -> np.ndarray:
        hx, hy = _central(h, 1), _central(h, 0)
        return -_central(axx * hx + axy * hy, 1) - _central(axy * hx + ayy * hy, 0) + lam * h + mu * _smoothness(h)

    rhs = _central(bx, 1) + _central(by, 0)  # −Dᵀ W r, with Dᵀ = −central
    diagonal = 0.25 * (axx + ayy) + lam + 4 * mu  # the stencil's centre weight, roughly
    out[box] = _conjugate_gradient(apply, rhs, 1.0 / diagonal, rtol, iterations)
    return out
