"""Loading users' photos: any common format, EXIF orientation, odd modes, huge files, clear errors.

Returns 8-bit RGB, downscaled to a working size when larger, with the factor that maps working-image
pixels back to the original photo (x right, y down).
"""

from __future__ import annotations

import io
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import FacesmithError
from .files import open_reason
from .options import DEFAULT_WORKING_SIDE

MIN_SIDE = 32  # below this no face detector can work
MAX_PIXELS = 400_000_000  # refuse beyond this (decompression bombs), even with reduced decoding
MID_GREY = (128, 128, 128)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")  # what `batch` picks from a folder
JPEG_SOI = b"\xff\xd8"
MAX_JPEG_SEGMENTS = 4096  # before the image data: a photo has tens, one with extended XMP (a depth map) hundreds
# Bytes of a JPEG's markers, fill and junk read one by one before the image data: a marker is 2, libjpeg skips a few
# bytes of junk with a warning, photos have none.
MAX_JPEG_SCAN = 65_536


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
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, or a FIFO or device that would block or never end
            raise ImageError(path, "not a file")
        if info.st_size == 0:
            raise ImageError(path, "file is empty, not an image")
        stream = path.open("rb")
    except OSError as exc:  # a symbolic link loop, a broken link, no permission
        raise ImageError(path, open_reason(exc, path)) from None
    try:
        with stream, _pixel_limit(MAX_PIXELS):
            problem = jpeg_header_problem(stream)
            if problem is not None:
                raise ImageError(path, problem)
            stream.seek(0)
            return _decode(path, Image.open(stream), working_side)
    except UnidentifiedImageError:
        raise ImageError(path, "not a valid image (unknown or unsupported format)") from None
    except Image.DecompressionBombError:
        raise ImageError(path, f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"image is corrupt or truncated ({exc})") from None


def jpeg_header_problem(stream: io.BufferedIOBase) -> str | None:
    """What is wrong with a JPEG's segments before its image data (SOS), walked by their lengths; None when they lead
    to a frame header (SOF) and then the image data, or the file is no JPEG (Pillow judges those). Pillow's own walk
    reads byte by byte through whatever is not a marker, so a 2 GB file of zeros after a JPEG signature took 89 s
    to refuse; this reads at most MAX_JPEG_SCAN bytes one by one."""
    if stream.read(2) != JPEG_SOI:
        return None
    frame, budget = False, MAX_JPEG_SCAN
    for _ in range(MAX_JPEG_SEGMENTS):
        code, budget = _next_marker(stream, budget)
        if code is None:
            return "image is corrupt or truncated (" + (
                "the JPEG ends before its image data)" if budget else "no JPEG marker where one should be)"
            )
        if code == 0xDA:  # start of scan: the image data
            return None if frame else "image is corrupt (a JPEG without a frame header)"
        if code == 0xD9:  # end of image
            return "image is corrupt (the JPEG ends before its image data)"
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        size = int.from_bytes(stream.read(2), "big")
        if size < 2:
            return "image is corrupt or truncated (a JPEG segment with a bad length)"
        frame |= 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC)  # SOF0..15, not DHT, JPG, DAC
        stream.seek(size - 2, io.SEEK_CUR)  # past the end: the next read finds nothing
    return f"image is corrupt (more than {MAX_JPEG_SEGMENTS} JPEG segments before the image data)"


def _next_marker(stream: io.BufferedIOBase, budget: int) -> tuple[int | None, int]:
    """The code of the next marker (FF, then not FF or 00) and what is left of `budget`, the bytes that may still be
    read one by one: a marker's FF, fill bytes (FF) and junk (libjpeg skips a few). None at the end of the file or
    when the budget is spent."""
    previous = b""
    while budget > 0:
        byte = stream.read(1)
        if not byte:
            return None, budget
        if previous == b"\xff" and byte not in (b"\xff", b"\x00"):
            return byte[0], budget
        previous, budget = byte, budget - 1
    return None, 0


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
