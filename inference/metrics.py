"""Reconstruction error as in the NoW benchmark: face region, similarity alignment, distances in mm."""

from __future__ import annotations

import numpy as np

from .flame_model import FlameModel

NOSE_TIP_IBUG = 30
FACE_RADIUS_M = 0.095  # NoW crops scans to this radius around the nose tip


def face_region(model: FlameModel) -> np.ndarray:
    """Boolean mask of face vertices: within 95 mm of the template's nose tip, eyeballs excluded."""
    from .flame import flame_forward, landmarks68

    out = flame_forward(model)
    tip = landmarks68(model, out)[0, NOSE_TIP_IBUG]
    near = np.linalg.norm(model.v_template - tip, axis=1) < FACE_RADIUS_M
    eyeballs = model.lbs_weights[:, 3:5].sum(axis=1) > 0.5
    return near & ~eyeballs


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
