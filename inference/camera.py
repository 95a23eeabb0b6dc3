"""Cameras mapping FLAME's frame (x right, y up, z to the viewer, metres) to image pixels (x right, y down).

- "orthographic" (DECA's scaled orthographic; "weak_perspective" is the same model): u = s·x + tx, v = −s·y + ty.
- "perspective": pinhole at distance tz in front of the face, focal length `focal` px, principal point `centre`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .options import CAMERA_KINDS


@dataclass(frozen=True)
class Camera:
    kind: str
    params: np.ndarray  # orthographic: (s px/m, tx px, ty px); perspective: (tx m, ty m, tz m)
    focal: float = 0.0  # perspective only, px
    centre: tuple[float, float] = (0.0, 0.0)  # perspective only, px

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise ValueError(f"unknown camera {self.kind!r}; choose one of {', '.join(CAMERA_KINDS)}")

    @property
    def is_perspective(self) -> bool:
        return self.kind == "perspective"

    def scale_at(self, depth: float = 0.0) -> float:
        """Pixels per metre near the face (the orthographic scale, or focal / distance)."""
        return float(self.params[0]) if not self.is_perspective else self.focal / float(self.params[2] - depth)

    def project(self, points: np.ndarray) -> np.ndarray:
        return project(self, points)[0]

    def with_params(self, params: np.ndarray) -> Camera:
        return Camera(self.kind, np.asarray(params, dtype=np.float64), self.focal, self.centre)

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.is_perspective:
            d.update(tx=float(self.params[0]), ty=float(self.params[1]), tz=float(self.params[2]))
            d.update(focal_px=self.focal, centre_px=list(self.centre))
        else:
            d.update(scale=float(self.params[0]), tx=float(self.params[1]), ty=float(self.params[2]))
        return d

    @staticmethod
    def from_dict(d: dict) -> Camera:
        if d["kind"] == "perspective":
            return Camera("perspective", np.array([d["tx"], d["ty"], d["tz"]]), d["focal_px"], tuple(d["centre_px"]))
        return Camera(d["kind"], np.array([d["scale"], d["tx"], d["ty"]]))


def project(cam: Camera, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (..., 2), d pixels / d point (..., 2, 3), d pixels / d camera params (..., 2, 3)."""
    p = np.asarray(points, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    zero, one = np.zeros_like(x), np.ones_like(x)
    if not cam.is_perspective:
        s, tx, ty = cam.params
        uv = np.stack([s * x + tx, -s * y + ty], axis=-1)
        d_point = np.stack([np.stack([s * one, zero, zero], -1), np.stack([zero, -s * one, zero], -1)], axis=-2)
        d_cam = np.stack([np.stack([x, one, zero], -1), np.stack([-y, zero, one], -1)], axis=-2)
        return uv, d_point, d_cam
    tx, ty, tz = cam.params
    f, (cx, cy) = cam.focal, cam.centre
    xc, yc, zc = x + tx, y + ty, tz - z  # the camera looks down -z from distance tz
    zc = np.maximum(zc, 1e-3)
    uv = np.stack([cx + f * xc / zc, cy - f * yc / zc], axis=-1)
    d_point = np.stack(
        [np.stack([f / zc, zero, f * xc / zc**2], -1), np.stack([zero, -f / zc, -f * yc / zc**2], -1)], axis=-2
    )
    d_cam = np.stack(
        [np.stack([f / zc, zero, -f * xc / zc**2], -1), np.stack([zero, -f / zc, f * yc / zc**2], -1)], axis=-2
    )
    return uv, d_point, d_cam
