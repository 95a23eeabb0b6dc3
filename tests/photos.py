"""Test photos without ../shared: a real portrait from scikit-image's bundled samples, and the bad inputs of
../shared/data/bad_inputs (see its README) remade from bundled photos with the same names and properties.

The portrait is `skimage.data.astronaut()` (Eileen Collins, NASA, public domain), cropped around the face
and scaled to 512², so the face is about as large as in ../shared's London-set portraits.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

FACE_BOX = (125, 25, 325, 225)  # x0, y0, x1, y1 of a square around the astronaut's face (512² original)


def portrait(side: int = 512) -> Image.Image:
    """A frontal portrait, RGB, side × side, the face about half as wide as the image."""
    from skimage import data

    return Image.fromarray(data.astronaut()).crop(FACE_BOX).resize((side, side), Image.Resampling.LANCZOS)


def jpeg_bytes(image: Image.Image, quality: int = 95, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **kw)
    return out.getvalue()


def make_bad_inputs(folder: Path) -> Path:
    """Each file of ../shared/data/bad_inputs, made from bundled photos; `upright_face.png` is the source
    exif_rotated_face.jpg is rotated from."""
    from skimage import data

    face = portrait()
    rng = np.random.default_rng(12345)
    files = {
        "empty.jpg": b"",
        "jpeg_named_png.png": jpeg_bytes(face),
        "truncated.jpg": jpeg_bytes(face)[:1024],  # headers and some entropy-coded data, no EOI marker
        "text_not_image.jpg": b"This is a text file with a .jpg name; it is not an image at all, see?\n",
        "grayscale_face.jpg": jpeg_bytes(face.convert("L")),
        "cmyk_face.jpg": jpeg_bytes(face.convert("CMYK")),
        # The face stored turned 90° counter-clockwise, with EXIF orientation 6 telling viewers to turn it back.
        "exif_rotated_face.jpg": jpeg_bytes(face.transpose(Image.Transpose.ROTATE_90), exif=_orientation(6)),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    face.save(folder / "upright_face.png")
    Image.new("RGB", (1, 1), (200, 150, 120)).save(folder / "one_pixel.png")
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(folder / "noise_256.png")
    Image.fromarray(data.coffee()).save(folder / "no_face_coffee.png")
    # No landscape ships with scikit-image, and detectors see faces in several of its samples (rocket, gravel,
    # chelsea): the retina photo has none.
    Image.fromarray(data.retina()).resize((640, 640)).save(folder / "no_face_landscape.jpg", quality=90)
    yy, xx = np.mgrid[:512, :512]
    alpha = ((xx - 256) / 200) ** 2 + ((yy - 256) / 240) ** 2 < 1  # opaque inside an ellipse around the face
    Image.fromarray(np.dstack([np.asarray(face), alpha * np.uint8(255)])).save(folder / "rgba_face.png")
    # Two faces side by side, the right one smaller and mirrored (the left one is the larger).
    pair = Image.new("RGB", (1024, 512), (128, 128, 128))
    pair.paste(face, (0, 0))
    pair.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((400, 400)), (568, 56))
    pair.save(folder / "two_faces.jpg", quality=90)
    # 81 Mpx of flat colour with the face in the centre: compresses to little, decodes to 243 MB at full size.
    huge = Image.new("RGB", (9000, 9000), (110, 120, 130))
    huge.paste(face, (4500 - 256, 4500 - 256))
    huge.save(folder / "huge_9000x9000.jpg", quality=85)
    return folder


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value  # Orientation
    return exif.tobytes()
