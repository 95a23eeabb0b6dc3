"""Phone-sized and oversized photos: decoded reduced, or refused with one clear line, never Pillow's own limit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.images import MAX_PIXELS, ImageError, load_photo


@pytest.fixture(scope="module")
def phone_jpeg(tmp_path_factory):
    """12000×9000 (108 Mpx), above Pillow's default bomb warning (89 Mpx): a smooth gradient (cheap to encode)."""
    path = tmp_path_factory.mktemp("big") / "phone.jpg"
    x = np.linspace(0, 255, 12000, dtype=np.float32)
    row = np.stack([x, x[::-1], np.full_like(x, 128)], axis=1).astype(np.uint8)
    Image.fromarray(np.broadcast_to(row, (9000, 12000, 3))).save(path, quality=70)
    return path


def test_108_megapixel_jpeg_is_decoded_reduced(phone_jpeg):
    photo = load_photo(phone_jpeg)
    assert photo.original_size == (12000, 9000)
    assert max(photo.rgb.shape[:2]) == 2048 and photo.scale == pytest.approx(12000 / 2048)
    assert any("downscaled 12000x9000" in n for n in photo.notes)
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's own limit is left as it was for everyone else


def test_beyond_the_project_limit_is_refused_by_name(tmp_path):
    # A PNG header declaring 25000×20000 (500 Mpx) with no data: refused from the header, nothing decoded.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 25000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path = tmp_path / "bomb.png"
    path.write_bytes(png + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    assert 25000 * 20000 > MAX_PIXELS
    with pytest.raises(ImageError, match=r"bomb\.png: image too large \(over 400 megapixels\)"):
        load_photo(path)
