"""Build assets/light_prior.npz: how natural light varies over a face, as the albedo's SH light fit sees it.

The de-lighting (inference/texture/albedo.py) fits 9 SH irradiance coefficients per channel to the face's skin.
Left free, the second-order terms also explain what is not light: a beard, glasses or the edge of hair, skin
that the skin test missed on a blurry photo. The fit then darkens the shading there and the albedo gets pale
blotches. Natural light is smoother than that. This builds the prior: the shape of the irradiance (the 8
higher-order coefficients over the constant one, luminance) under real environments.

The environments are the 8 CC0 Poly Haven HDRIs that the bpy wheel ships (`datafiles/studiolights/world`),
each turned about the vertical in 10° steps, tilted by -15°, 0° and +15° and mirrored, in the fit's frame
(y up, +z towards the camera). Only turns that light the face are kept (the irradiance towards the camera at
least the median over all directions): photos are taken of lit faces. The irradiance is integrated
numerically (the map area-averaged to 32 × 64, cosine lobe) at 2,000 directions and fitted with the
pipeline's own SH basis, so conventions cannot differ.

Usage: python -m facesmith.training.light_prior [--hdri-dir DIR] [-o assets/light_prior.npz]
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np

from ..inference.texture.albedo import sh_basis
from ..inference.texture.colour import LUMINANCE

OUT = Path(__file__).resolve().parents[1] / "assets" / "light_prior.npz"
MAP_SIZE = (32, 64)  # rows (elevation) × columns (azimuth) the environment is averaged down to
DIRECTIONS = 2000
YAW_STEP = 10.0
TILTS = (-15.0, 0.0, 15.0)
FLOOR = 1e-4  # smallest variance kept in the covariance's eigenvalues


def hdri_dir() -> Path:
    """The bpy wheel's studio-light worlds (CC0)."""
    import bpy

    found = Path(bpy.utils.resource_path("LOCAL")) / "datafiles" / "studiolights" / "world"
    if not found.is_dir():
        raise SystemExit(f"light_prior: {found}: not a folder; pass --hdri-dir")
    return found


def read_map(path: Path) -> np.ndarray:
    """(rows, cols, 3) linear radiance, area-averaged to MAP_SIZE (a small sun keeps its energy)."""
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # read before cv2 is first imported
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"light_prior: {path}: not readable as an EXR")
    rgb = image[..., ::-1].astype(np.float64)
    return cv2.resize(rgb, MAP_SIZE[::-1], interpolation=cv2.INTER_AREA)


def map_directions(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions (rows·cols, 3) of an equirectangular map's pixels (top row up, +y) and their solid angles."""
    rows, cols = shape
    theta = (np.arange(rows) + 0.5) / rows * np.pi  # from +y
    phi = (np.arange(cols) + 0.5) / cols * 2 * np.pi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1).reshape(-1, 3)
    solid = (np.sin(t) * (np.pi / rows) * (2 * np.pi / cols)).reshape(-1)
    return dirs, solid


def fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = np.pi * (1 + 5**0.5) * i
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def rotation(yaw_deg: float, tilt_deg: float, mirror: bool) -> np.ndarray:
    """Turn about +y, then tilt about +x; mirrored in x if asked."""
    a, b = np.radians(yaw_deg), np.radians(tilt_deg)
    yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    flip = np.diag([-1.0 if mirror else 1.0, 1.0, 1.0])
    return flip @ tilt @ yaw


def irradiance(radiance: np.ndarray, dirs: np.ndarray, solid: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(N,) luminance irradiance at unit normals from radiance (M,) arriving from dirs (M, 3)."""
    return np.maximum(normals @ dirs.T, 0.0) @ (radiance * solid)


def shape_samples(maps: list[np.ndarray]) -> np.ndarray:
    """(S, 8) higher-order SH coefficients over the constant one, one row per lit turn of each map."""
    dirs, solid = map_directions(MAP_SIZE)
    normals = fibonacci_sphere(DIRECTIONS)
    basis = sh_basis(normals)
    front = int(np.argmax(normals[:, 2]))  # the direction towards the camera
    rows = []
    for radiance_map in maps:
        luminance = radiance_map.reshape(-1, 3) @ LUMINANCE
        for yaw in np.arange(0.0, 360.0, YAW_STEP):
            for tilt in TILTS:
                for mirror in (False, True):
                    e = irradiance(luminance, dirs @ rotation(yaw, tilt, mirror).T, solid, normals)
                    if e[front] < np.median(e) * (1 - 1e-9):  # the face in the dark half: not how photos are taken
                        continue
                    sh, *_ = np.linalg.lstsq(basis, e, rcond=None)
                    rows.append(sh[1:] / sh[0])
    return np.array(rows)


def _psd(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return vectors @ np.diag(np.maximum(values, FLOOR)) @ vectors.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hdri-dir", type=Path, default=None, help="folder of equirectangular .exr maps")
    parser.add_argument("-o", "--out", type=Path, default=OUT)
    args = parser.parse_args()
    folder = args.hdri_dir or hdri_dir()
    paths = sorted(folder.glob("*.exr"))
    if not paths:
        raise SystemExit(f"light_prior: no .exr files in {folder}")
    samples = shape_samples([read_map(p) for p in paths])
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()
    np.savez(
        args.out, mean=samples.mean(0), cov=_psd(np.cov(samples.T)), samples=np.int64(len(samples)),
        source=np.str_(f"{len(paths)} CC0 Poly Haven HDRIs from the bpy wheel ({', '.join(p.stem for p in paths)}); "
                       f"SHA-256 of their bytes in order {digest}"),
    )  # fmt: skip
    print(f"{args.out}: {len(samples)} lit turns of {len(paths)} maps; mean {np.round(samples.mean(0), 3)}")
    print(f"sd {np.round(samples.std(0), 3)}")


if __name__ == "__main__":
    main()
