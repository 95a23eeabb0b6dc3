"""Photo loading: formats, modes, orientation, size limits, and clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.images import ImageError, load_photo

from ..conftest import FACES


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.jpg", "file is empty, not an image"),
        ("truncated.jpg", "image is corrupt or truncated"),
        ("text_not_image.jpg", "not a valid image"),
        ("one_pixel.png", r"image too small \(1x1"),
    ],
)
def test_bad_files_raise_clear_errors(bad_inputs, name, reason):
    with pytest.raises(ImageError, match=reason) as err:
        load_photo(bad_inputs / name)
    assert str(bad_inputs / name) in str(err.value)


@pytest.mark.parametrize(
    ("name", "mode"),
    [("cmyk_face.jpg", "CMYK"), ("grayscale_face.jpg", "L"), ("rgba_face.png", "RGBA"), ("jpeg_named_png.png", "RGB")],
)
def test_odd_modes_become_rgb(bad_inputs, name, mode):
    photo = load_photo(bad_inputs / name)
    assert photo.mode == mode and photo.rgb.shape == (512, 512, 3) and photo.rgb.dtype == np.uint8
    if mode == "L":
        assert np.array_equal(photo.rgb[..., 0], photo.rgb[..., 2])
    if mode == "RGBA":  # transparent background composited on mid-grey
        assert np.abs(photo.rgb[2, 2].astype(int) - 128).max() <= 1


def test_cmyk_colours_match_the_rgb_original(bad_inputs):
    cmyk = load_photo(bad_inputs / "cmyk_face.jpg").rgb.astype(float)
    rgb = load_photo(bad_inputs / "jpeg_named_png.png").rgb.astype(float)
    assert np.abs(cmyk - rgb).mean() < 8  # not inverted, not a different image


def test_exif_orientation_applied(bad_inputs):
    rotated = load_photo(bad_inputs / "exif_rotated_face.jpg")
    # its source, stored upright (tests/photos.py writes it beside the remade files)
    source = bad_inputs / "upright_face.png"
    upright = load_photo(source if source.is_file() else FACES / "002_03.jpg")
    assert any("EXIF orientation 6" in n for n in rotated.notes)
    assert np.abs(rotated.rgb.astype(float) - upright.rgb.astype(float)).mean() < 2


def test_huge_jpeg_is_decoded_reduced_and_mapped_back(bad_inputs):
    photo = load_photo(bad_inputs / "huge_9000x9000.jpg", working_side=2048)
    assert photo.original_size == (9000, 9000) and max(photo.rgb.shape) == 2048
    assert photo.to_original([[1023.5, 1023.5]])[0] == pytest.approx([4499.5, 4499.5])


def test_sixteen_bit_png_and_webp_and_tiff(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    photo = load_photo(tmp_path / "deep.png")
    assert photo.rgb.shape == (64, 64, 3) and photo.rgb[0, 0, 0] == 0 and photo.rgb[-1, -1, 0] == 255
    colour = np.zeros((40, 50, 3), np.uint8)
    colour[..., 0] = 200
    for fmt in ("WEBP", "TIFF"):
        path = tmp_path / f"c.{fmt.lower()}"
        Image.fromarray(colour).save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        assert load_photo(path).rgb[5, 5].tolist() == [200, 0, 0]


def test_downscale_keeps_coordinates(tmp_path):
    img = np.zeros((300, 400, 3), np.uint8)
    Image.fromarray(img).save(tmp_path / "big.png")
    photo = load_photo(tmp_path / "big.png", working_side=200)
    assert photo.rgb.shape == (150, 200, 3) and photo.scale == pytest.approx(2.0)
    assert any("downscaled 400x300 -> 200x150" in n for n in photo.notes)


def test_missing_and_folder(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_photo(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="not a file"):
        load_photo(tmp_path)


@pytest.mark.parametrize(
    "header",
    [b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", b"\xff\xd8\xff\xff"],
    ids=["bad_length", "app0_then_zeros", "fill_bytes"],
)
def test_a_huge_file_of_zeros_behind_a_jpeg_signature_is_refused_at_once(tmp_path, header):
    """2 GB, sparse (no disk used): Pillow's own marker scan read it byte by byte for 89 s."""
    import time

    path = tmp_path / "zeros.jpg"
    with path.open("wb") as f:
        f.write(header)
        f.truncate(2 << 30)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="image is corrupt"):
        load_photo(path)
    assert time.perf_counter() - start < 1.0
