"""The preview image: photo | render | render over photo | render turned 45°, side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image

OUTLINE_RGB = (1.0, 0.2, 0.8)  # magenta: what was kept out of the albedo


def occluder_outline(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """(H, W) bool: the outline of the photo pixels whose texels were masked as occluders (`points` x, y)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    if len(points):
        xy = np.round(points).astype(int)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < shape[0])
        mask[xy[inside, 1], xy[inside, 0]] = 1
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))  # texels land sparsely
    return (cv2.dilate(mask, np.ones((3, 3), np.uint8)) - mask).astype(bool)


def compose_preview(
    photo_rgb: np.ndarray, render_rgba: np.ndarray, turned_rgba: np.ndarray | None = None,
    occluders_px: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Panels of the photo's size: the photo, the render on grey, the render over the photo (with the
    outline of what was masked out of the albedo, `occluders_px` (N, 2) x, y), and (when given) the render
    from the side on grey."""
    h, w = photo_rgb.shape[:2]

    def resized(rgba: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(rgba).resize((w, h), Image.LANCZOS), dtype=np.float32) / 255.0

    def on_grey(rgba: np.ndarray) -> np.ndarray:
        return rgba[..., :3] * rgba[..., 3:4] + 0.5 * (1 - rgba[..., 3:4])

    render = resized(render_rgba)
    alpha = render[..., 3:4]
    photo = photo_rgb.astype(np.float32) / 255.0
    overlay = render[..., :3] * alpha * 0.6 + photo * (1 - alpha * 0.6)
    if occluders_px is not None:
        overlay[occluder_outline((h, w), occluders_px)] = OUTLINE_RGB
    panels = [photo, on_grey(render), overlay] + ([on_grey(resized(turned_rgba))] if turned_rgba is not None else [])
    panels = np.concatenate(panels, axis=1)
    return np.round(np.clip(panels, 0, 1) * 255).astype(np.uint8)
