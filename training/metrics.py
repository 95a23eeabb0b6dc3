"""Reconstruction error as in the NoW benchmark: similarity alignment, distances in mm (the face region is
`inference.flame.regions.face_region`)."""

from __future__ import annotations

import numpy as np


def similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`src` moved by the scale, rotation and translation that best fit it to `dst` (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / (a**2).sum(1).mean()
    return scale * a @ rot.T + mu_d


def median_error_mm(fitted: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Median per-vertex distance in mm over `mask` after similarity alignment of fitted to truth."""
    aligned = similarity_align(fitted[mask], truth[mask])
    return float(np.median(np.linalg.norm(aligned - truth[mask], axis=1)) * 1000.0)
