"""The preview image: photo | render | render over photo | render turned 45°, side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image


def compose_preview(
    photo_rgb: np.ndarray, render_rgba: np.ndarray, turned_rgba: np.ndarray | None = None
) -> np.ndarray:
    """Panels of the photo's size: the photo, the render on grey, the render over the photo, and (when
    given) the render from the side on grey."""
    h, w = photo_rgb.shape[:2]

    def resized(rgba: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(rgba).resize((w, h), Image.LANCZOS), dtype=np.float32) / 255.0

    def on_grey(rgba: np.ndarray) -> np.ndarray:
        return rgba[..., :3] * rgba[..., 3:4] + 0.5 * (1 - rgba[..., 3:4])

    render = resized(render_rgba)
    alpha = render[..., 3:4]
    photo = photo_rgb.astype(np.float32) / 255.0
    overlay = render[..., :3] * alpha * 0.6 + photo * (1 - alpha * 0.6)
    panels = [photo, on_grey(render), overlay] + ([on_grey(resized(turned_rgba))] if turned_rgba is not None else [])
    panels = np.concatenate(panels, axis=1)
    return np.round(np.clip(panels, 0, 1) * 255).astype(np.uint8)
