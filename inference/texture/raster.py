"""The FLAME UV layout as a texel grid: for each texel its triangle and barycentric weights.

Row 0 is the top of the image (v = 1), as image files store it; texel centres sit at half-integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..flame.model import FlameModel


@dataclass(frozen=True)
class UVRaster:
    size: int
    triangle: np.ndarray  # (H, W) int32, −1 outside every UV triangle
    bary: np.ndarray  # (H, W, 3) float32

    @property
    def covered(self) -> np.ndarray:
        return self.triangle >= 0


def uv_to_texel(uv: np.ndarray, size: int) -> np.ndarray:
    """UV (origin bottom-left) -> texel coordinates (x right, y down; centres at integers)."""
    return np.stack([uv[:, 0] * size - 0.5, (1.0 - uv[:, 1]) * size - 0.5], axis=1)


def rasterize_uv(model: FlameModel, size: int) -> UVRaster:
    """Which triangle covers each texel, and where in it. Islands do not overlap in FLAME's layout."""
    import cv2

    corners = uv_to_texel(model.uv_coords, size)[model.uv_faces]  # (F, 3, 2)
    triangle = np.full((size, size), -1, np.int32)
    fixed = np.round(corners * 16).astype(np.int32)  # cv2 sub-pixel precision: 4 fractional bits
    for i, tri in enumerate(fixed):
        cv2.fillConvexPoly(triangle, tri, i, lineType=cv2.LINE_8, shift=4)
    rows, cols = np.nonzero(triangle >= 0)
    tri = triangle[rows, cols]
    a, b, c = corners[tri, 0], corners[tri, 1], corners[tri, 2]
    p = np.stack([cols, rows], axis=1).astype(np.float64)
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    w1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    w2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    bary = np.clip(np.stack([1 - w1 - w2, w1, w2], axis=1), 0.0, 1.0)  # edge texels fall just outside
    bary /= bary.sum(axis=1, keepdims=True)
    out = np.zeros((size, size, 3), np.float32)
    out[rows, cols] = bary
    return UVRaster(size, triangle, out)
