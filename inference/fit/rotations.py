"""Small rotation helpers for the fit's hot loop (single 3×3 matrices, no batching)."""

from __future__ import annotations

import math

import numpy as np


def rotation(aa: np.ndarray) -> np.ndarray:
    """Rodrigues for one axis-angle vector: the hot loop's version of flame.rodrigues, without batching overhead."""
    x, y, z = float(aa[0]), float(aa[1]), float(aa[2])
    theta = math.sqrt(x * x + y * y + z * z)
    if theta < 1e-12:
        return np.eye(3)
    x, y, z = x / theta, y / theta, z / theta
    s, c = math.sin(theta), math.cos(theta)
    t = 1.0 - c
    return np.array([
        [c + t * x * x, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, c + t * y * y, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, c + t * z * z],
    ])  # fmt: skip


def rotation_to_axis_angle(r: np.ndarray) -> np.ndarray:
    angle = np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if np.pi - angle < 1e-4:  # near 180°: use the symmetric part
        axis = np.sqrt(np.maximum((np.diag(r) + 1.0) / 2.0, 0.0)) * np.sign(axis + 1e-12)
        return axis / np.linalg.norm(axis) * angle
    return axis / (2.0 * np.sin(angle)) * angle


def skew(w: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    z = np.zeros(w.shape[:-1])
    return np.stack([z, -w[..., 2], w[..., 1], w[..., 2], z, -w[..., 0], -w[..., 1], w[..., 0], z], -1).reshape(
        w.shape[:-1] + (3, 3)
    )
