"""Head textures (numpy only): the image arrays the Blender material uses, and writing them to files.

`flat_textures` is the `--flat-texture` choice: a uniform skin colour taken from the photo and a flat
displacement map (the photo-derived maps come from texture/albedo.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..files import atomic_write
from ..result import PhotoFit

if TYPE_CHECKING:
    from .eyes import EyeTexture

FALLBACK_SKIN_SRGB = (0.80, 0.62, 0.52)  # used when no face pixel can be sampled


@dataclass(frozen=True)
class TextureSet:
    albedo: np.ndarray  # (H, W, 3) float32 linear RGB in [0, 1], row 0 at the top, u right, v up
    displacement: np.ndarray  # (H, W) float32 metres along the normal, zero = the FLAME surface
    notes: tuple[str, ...] = ()
    # (H, W, 2) metres per texel along u and v on the mesh (UV metric), for the normal map; None: flat relief
    texel_metres: np.ndarray | None = None
    # Per photo: the share of its seen face texels masked as occluders (hair, glasses, hands, shadows), and
    # where those texels lie in its working image (N, 2) x, y — for the report and the preview's outline.
    occluded_fractions: tuple[float, ...] = ()
    occluded_pixels: tuple[np.ndarray, ...] = ()
    # The eyeballs' texture with the photos' irises (texture/eyes.py); None: the default eye (an older result).
    eyes: EyeTexture | None = None
    # Per photo, the camera's white balance × exposure that the albedo was divided by (texture/albedo.py; albedo =
    # colour ÷ shading ÷ gain): the irises are corrected by the same. Empty: none estimated.
    photo_gains: tuple[np.ndarray, ...] = ()

    @property
    def displacement_range(self) -> float:
        """Half-range in metres that the 16-bit PNG spans around its mid-grey."""
        return float(max(np.abs(self.displacement).max(), 1e-4))


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def skin_colour(photo_rgb: np.ndarray, fit: PhotoFit, scale: float) -> np.ndarray:
    """Median sRGB colour (0..1) of the photo under the cheeks and forehead of the fitted mesh.

    Sampled at the detected landmarks' centroid region: the points between eyes and mouth are skin in
    nearly every photo (no hair, beard or teeth)."""
    pts = fit.landmarks_px / scale  # original -> working pixels
    centre = np.median(pts, axis=0)
    spread = np.median(np.abs(pts - centre), axis=0)
    h, w = photo_rgb.shape[:2]
    x0, x1 = int(max(centre[0] - spread[0], 0)), int(min(centre[0] + spread[0], w))
    y0, y1 = int(max(centre[1] - spread[1], 0)), int(min(centre[1] + spread[1] * 0.3, h))
    patch = photo_rgb[y0:y1, x0:x1].reshape(-1, 3)
    if len(patch) < 16:
        return np.array(FALLBACK_SKIN_SRGB)
    return np.median(patch, axis=0) / 255.0


def flat_textures(photo_rgb: np.ndarray, fit: PhotoFit, scale: float, size: int = 256) -> TextureSet:
    """A uniform skin-coloured albedo from the photo and a flat displacement map."""
    colour = srgb_to_linear(skin_colour(photo_rgb, fit, scale))
    albedo = np.broadcast_to(colour, (size, size, 3)).astype(np.float32).copy()
    return TextureSet(albedo, np.zeros((size, size), np.float32), ("flat skin colour (photo texture turned off)",))


def tangent_normals(textures: TextureSet) -> np.ndarray:
    """(H, W, 3) unit tangent-space normals of the displacement, for engines that do not displace:
    n ∝ (−∂h/∂u, −∂h/∂v, 1) with the slopes in metres per metre along the UV axes (x = +u, y = +v, the
    OpenGL / glTF / Blender convention; DirectX-style engines flip green)."""
    h = textures.displacement.astype(np.float64)
    if textures.texel_metres is None or not np.any(h):
        return np.broadcast_to(np.array([0.0, 0.0, 1.0]), (*h.shape, 3)).copy()
    per_u = np.maximum(textures.texel_metres[..., 0], 1e-9)
    per_v = np.maximum(textures.texel_metres[..., 1], 1e-9)
    du = np.gradient(h, axis=1) / per_u
    dv = -np.gradient(h, axis=0) / per_v  # rows run down, v up
    n = np.stack([-du, -dv, np.ones_like(h)], axis=-1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def write_normal_png(textures: TextureSet, path: str | Path) -> Path:
    """8-bit RGB tangent-space normal map (0.5 grey-blue is flat)."""
    import cv2

    rgb = np.round((tangent_normals(textures) * 0.5 + 0.5) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", rgb[..., ::-1])
    return atomic_write(path, lambda f: f.write(data.tobytes()))


def write_albedo_png(textures: TextureSet, path: str | Path) -> Path:
    """8-bit sRGB PNG."""
    import cv2

    rgb = np.round(linear_to_srgb(textures.albedo) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", rgb[..., ::-1])
    return atomic_write(path, lambda f: f.write(data.tobytes()))


def write_displacement_png(textures: TextureSet, path: str | Path) -> Path:
    """16-bit grey PNG: 32768 is the surface, ±32767 is ±displacement_range metres."""
    import cv2

    d = textures.displacement / textures.displacement_range
    grey = np.round(32768 + np.clip(d, -1, 1) * 32767).astype(np.uint16)
    ok, data = cv2.imencode(".png", grey)
    return atomic_write(path, lambda f: f.write(data.tobytes()))


def write_eyes_png(textures: TextureSet, path: str | Path) -> Path:
    """8-bit sRGB PNG of the eyeball texture (the default eye when the textures have none)."""
    import cv2

    from .eyes import default_eye_texture

    eyes = textures.eyes if textures.eyes is not None else default_eye_texture()
    rgb = np.round(linear_to_srgb(eyes.image) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", rgb[..., ::-1])
    return atomic_write(path, lambda f: f.write(data.tobytes()))


TEXTURE_MAPS = ("albedo", "displacement", "normal", "eyes")  # written as NAME_<map>.png beside every export


def write_texture_maps(textures: TextureSet, folder: str | Path, name: str) -> dict[str, Path]:
    """NAME_albedo.png (8-bit sRGB), NAME_displacement.png (16-bit, ± displacement_range metres),
    NAME_normal.png (tangent space, from the displacement) and NAME_eyes.png (the eyeballs, 8-bit sRGB) in
    `folder`."""
    writers = {"albedo": write_albedo_png, "displacement": write_displacement_png, "normal": write_normal_png,
               "eyes": write_eyes_png}  # fmt: skip
    return {m: writers[m](textures, Path(folder) / f"{name}_{m}.png") for m in TEXTURE_MAPS}
