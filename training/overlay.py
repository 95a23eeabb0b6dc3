"""Overlay images for looking at a fit: the projected mesh, detected and model landmarks on the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..inference.flame.model import FlameModel
from ..inference.images import load_photo, to_working
from ..inference.result import PhotoFit


def draw_fit(model: FlameModel, fit: PhotoFit, max_side: int = 1024) -> np.ndarray:
    """RGB image: photo with the fitted mesh's edges (grey), detected points (green), model 68 points (red)."""
    import cv2

    photo = load_photo(fit.path, working_side=max_side)
    img = photo.rgb.copy()
    uv = to_working(fit.camera.project(fit.vertices), photo.scale)
    # Only faces turned towards the camera, so the back of the head does not clutter the view.
    tri = uv[model.faces]
    facing = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) < 0
    lines = tri[facing][:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2, 2)
    mesh = img.copy()
    cv2.polylines(mesh, np.round(lines * 4).astype(np.int32), False, (235, 235, 235), 1, cv2.LINE_AA, shift=2)
    img = cv2.addWeighted(mesh, 0.45, img, 0.55, 0)
    radius = max(1, round(max(img.shape[:2]) / 300))
    for x, y in np.round(to_working(fit.landmarks_px, photo.scale)).astype(int):
        cv2.circle(img, (int(x), int(y)), radius, (40, 220, 40), -1, cv2.LINE_AA)
    for x, y in np.round(to_working(fit.model_landmarks68_px, photo.scale)).astype(int):
        cv2.circle(img, (int(x), int(y)), radius, (230, 40, 40), -1, cv2.LINE_AA)
    return img


def save_overlay(model: FlameModel, fit: PhotoFit, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(draw_fit(model, fit)).save(path)
    return path
