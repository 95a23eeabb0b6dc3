"""The preview image: photo | render | render over photo, side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image


def compose_preview(photo_rgb: np.ndarray, render_rgba: np.ndarray) -> np.ndarray:
    """Three panels of the photo's size: the photo, the render on grey, the render over the photo."""
    h, w = photo_rgb.shape[:2]
    render = np.asarray(Image.fromarray(render_rgba).resize((w, h), Image.LANCZOS), dtype=np.float32) / 255.0
    alpha = render[..., 3:4]
    photo = photo_rgb.astype(np.float32) / 255.0
    on_grey = render[..., :3] * alpha + 0.5 * (1 - alpha)
    overlay = render[..., :3] * alpha * 0.6 + photo * (1 - alpha * 0.6)
    panels = np.concatenate([photo, on_grey, overlay], axis=1)
    return np.round(np.clip(panels, 0, 1) * 255).astype(np.uint8)
