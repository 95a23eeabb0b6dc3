"""Loading users' photos: any common format, EXIF orientation, odd modes, huge files, clear errors.

Returns 8-bit RGB, downscaled to a working size when larger, with the factor that maps working-image
pixels back to the original photo (x right, y down).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FacesmithError
from .options import DEFAULT_WORKING_SIDE

MIN_SIDE = 32  # below this no face detector can work
MAX_PIXELS = 400_000_000  # refuse beyond this (decompression bombs), even with reduced decoding
MID_GREY = (128, 128, 128)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")  # what `batch` picks from a folder


class ImageError(FacesmithError):
    """A file that cannot be used as a photo; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Photo:
    path: Path
    rgb: np.ndarray  # (H, W, 3) uint8, working size, upright
    original_size: tuple[int, int]  # (width, height) of the upright original
    scale: float  # original pixels per working pixel (>= 1)
    mode: str  # the file's colour mode before conversion (RGB, L, RGBA, CMYK, I;16 ...)
    notes: tuple[str, ...] = ()

    def to_original(self, xy: np.ndarray) -> np.ndarray:
        """Working-image pixel coordinates -> original-photo pixel coordinates (pixel centres kept)."""
        return (np.asarray(xy, dtype=np.float64) + 0.5) * self.scale - 0.5


def to_working(xy: np.ndarray, scale: float) -> np.ndarray:
    """Original-photo pixel coordinates -> working-image ones (the inverse of Photo.to_original)."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) / scale - 0.5


def load_photo(path: str | Path, working_side: int = DEFAULT_WORKING_SIDE) -> Photo:
    """Open a photo by its content (not its extension) and return it upright, RGB, at most `working_side`."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "file not found" if not path.exists() else "not a file")
    if path.stat().st_size == 0:
        raise ImageError(path, "file is empty, not an image")
    try:
        with _pixel_limit(MAX_PIXELS):
            img = Image.open(path)
            return _decode(path, img, working_side)
    except UnidentifiedImageError:
        raise ImageError(path, "not a valid image (unknown or unsupported format)") from None
    except Image.DecompressionBombError:
        raise ImageError(path, f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"image is corrupt or truncated ({exc})") from None


@contextmanager
def _pixel_limit(pixels: int) -> Iterator[None]:
    """Pillow's own decompression-bomb limit (≈ 89 Mpx, an error from ≈ 179 Mpx) would refuse a 108 Mpx phone
    photo before ours applies; for the duration, Pillow errors only beyond `pixels` and its warning is
    silenced. Pillow keeps the limit in a module attribute, so it is restored afterwards."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = pixels // 2  # Pillow raises at twice this
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _decode(path: Path, img: Image.Image, working_side: int) -> Photo:
    mode, (w, h) = img.mode, img.size
    if w * h > MAX_PIXELS:
        raise ImageError(path, f"image too large ({w}x{h})")
    orientation = img.getexif().get(0x0112, 1)
    upright = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    if min(w, h) < MIN_SIDE:
        raise ImageError(path, f"image too small ({w}x{h}, need at least {MIN_SIDE} px per side)")
    notes = []
    if max(w, h) > working_side and img.format == "JPEG":
        # JPEG can decode at 1/2, 1/4, 1/8 scale: a 9000² photo never exists at full size in memory.
        img.draft(img.mode, (working_side, working_side))
    img.load()  # raises on truncated data (Pillow's LOAD_TRUNCATED_IMAGES stays off)
    img = ImageOps.exif_transpose(img)
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    rgb = _to_rgb(img)
    if max(rgb.size) > working_side:
        factor = working_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor))), Image.LANCZOS)
    scale = upright[0] / rgb.width
    if scale > 1.0001:
        notes.append(f"downscaled {upright[0]}x{upright[1]} -> {rgb.width}x{rgb.height} for processing")
    if mode not in ("RGB", "RGBA", "L", "P", "CMYK", "LA", "YCbCr"):
        notes.append(f"converted from {mode}")
    return Photo(path, np.asarray(rgb, dtype=np.uint8).copy(), upright, scale, mode, tuple(notes))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, MID_GREY + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")  # L, P, CMYK, YCbCr ... (Pillow inverts Adobe CMYK JPEGs correctly)
