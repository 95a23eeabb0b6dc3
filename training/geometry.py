"""Closest points on triangle meshes, shared by the ICT -> ARKit transfer and the identity benchmark."""

from __future__ import annotations

import numpy as np


def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights (N, 3) of the closest point to p on triangles abc (all (N, 3)); Ericson's method."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-30, 1e-30, denom)
    v, w = vb / denom, vc / denom
    out = np.stack([1 - v - w, v, w], 1)  # interior
    with np.errstate(divide="ignore", invalid="ignore"):
        # edges
        t_ab = np.clip(d1 / (d1 - d3), 0, 1)
        e_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t_ac = np.clip(d2 / (d2 - d6), 0, 1)
        e_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t_bc = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1)
        e_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    out[e_bc] = np.stack([np.zeros(e_bc.sum()), 1 - t_bc[e_bc], t_bc[e_bc]], 1)
    out[e_ac] = np.stack([1 - t_ac[e_ac], np.zeros(e_ac.sum()), t_ac[e_ac]], 1)
    out[e_ab] = np.stack([1 - t_ab[e_ab], t_ab[e_ab], np.zeros(e_ab.sum())], 1)
    # vertices
    for mask, k in (((d1 <= 0) & (d2 <= 0), 0), ((d3 >= 0) & (d4 <= d3), 1), ((d6 >= 0) & (d5 <= d6), 2)):
        out[mask] = np.eye(3)[k]
    return np.nan_to_num(out, nan=1.0 / 3)
