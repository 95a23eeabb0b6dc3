"""Which surface points a photo sees: a triangle-index buffer of the posed mesh, then each point's depth against
the front triangle's plane at its own pixel. Shared by the texture bake and the photo-consistency refinement."""

from __future__ import annotations

import numpy as np

from ..camera import Camera
from ..images import to_working

DEPTH_TOLERANCE_M = 0.002  # a point this far behind the front surface is hidden


def view_dirs(camera: Camera, points: np.ndarray) -> np.ndarray:
    """Unit vectors (N, 3) from surface points towards the camera (FLAME's +z for orthographic cameras)."""
    if not camera.is_perspective:
        return np.broadcast_to([0.0, 0.0, 1.0], points.shape)
    tx, ty, tz = camera.params
    d = np.array([-tx, -ty, tz]) - points
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def depth_visible(
    camera: Camera, verts: np.ndarray, faces: np.ndarray, scale: float, shape: tuple[int, int], px: np.ndarray,
    depth: np.ndarray, tolerance: float = DEPTH_TOLERANCE_M,
) -> np.ndarray:  # fmt: skip
    """Which points (working pixels `px`, FLAME z `depth`) the photo sees: a triangle-index buffer of the posed
    mesh (painter's algorithm, far to near), then each point's depth against the front triangle's plane at its
    own pixel.

    (A buffer of one depth per triangle rejected the far parts of oblique triangles on the cheeks and jaw: a
    speckle of unseen texels there showed as dark streaks on the side view.)"""
    import cv2

    h, w = shape
    uv = to_working(camera.project(verts), scale)
    tri_uv = uv[faces]
    e1, e2 = tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]
    cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    front = cross < 0  # counter-clockwise in y-up = facing us
    tri_depth = verts[faces, 2].max(axis=1)
    buffer = np.full((h, w), -1.0, np.float32)  # triangle index (exact in float32 below 2^24)
    order = np.flatnonzero(front)[np.argsort(tri_depth[front])]  # far to near: near ones paint last
    fixed = np.round(tri_uv * 16).astype(np.int32)
    for f in order:
        cv2.fillConvexPoly(buffer, fixed[f], float(f), lineType=cv2.LINE_8, shift=4)
    x = np.clip(np.round(px[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(px[:, 1]).astype(int), 0, h - 1)
    inside = (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
    hit = buffer[y, x].astype(int)
    covered = inside & (hit >= 0)
    f = np.maximum(hit, 0)
    d = px - tri_uv[f, 0]  # barycentrics of the point's pixel in the front triangle
    area = np.where(cross[f] == 0, -1e-12, cross[f])  # only front (cross < 0) triangles are painted
    b1 = (d[:, 0] * e2[f, 1] - d[:, 1] * e2[f, 0]) / area
    b2 = (e1[f, 0] * d[:, 1] - e1[f, 1] * d[:, 0]) / area
    z = verts[faces[f]][..., 2]
    front_depth = z[:, 0] + b1 * (z[:, 1] - z[:, 0]) + b2 * (z[:, 2] - z[:, 0])
    return covered & (depth >= front_depth - tolerance)
