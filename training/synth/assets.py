"""Backgrounds and cut-outs for the data engine, with their licences.

Backgrounds: Blender's studio-light HDRIs (CC0, Poly Haven / Greg Zaal; tone-mapped, the horizon band of
the equirectangular image) and scikit-image's CC0 / public-domain sample photos. Cached as one .npz under
.cache/synth/. Cut-outs: UTKFace crops, NON-COMMERCIAL, only when asked for explicitly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ...inference.flame.paths import PACKAGE_ROOT
from .bank import CACHE

BACKGROUNDS_PATH = CACHE / "backgrounds.npz"
SKIMAGE_SAMPLES = {  # name: licence, as skimage.data's docstrings state
    "coffee.png": "CC0 (Rachel Michetti)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "rocket.jpg": "public domain (SpaceX)",
    "brick.png": "CC0 (CC0Textures)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures)",
}
TRAIN_FACES = PACKAGE_ROOT.parent / "shared" / "data" / "train_faces"
CUTOUT_SOURCE = {"name": "UTKFace crops (../shared/data/train_faces)", "licence": "non-commercial research only"}


def _hdri_dir() -> Path | None:
    try:
        import bpy  # noqa: F401  (only to find its data files; not needed when the cache exists)
    except ImportError:
        pass
    for root in map(Path, sys.path):
        for d in root.glob("bpy/*/datafiles/studiolights/world"):
            if d.is_dir():
                return d
    return None


_READ_EXR = """
import sys, cv2, numpy as np
out = []
for path in sys.argv[2:]:
    hdr = cv2.imread(path, cv2.IMREAD_UNCHANGED)[..., :3][..., ::-1].astype(np.float32)
    h = hdr.shape[0]
    band = hdr[int(h * 0.3): int(h * 0.62)]  # around the horizon: the least distorted, most photo-like
    band = np.nan_to_num(np.clip(band, 0, None))
    band = band / (np.median(band) * 4 + 1e-6)
    ldr = band / (1 + band)  # Reinhard
    ldr = np.clip(ldr ** (1 / 2.2) * 1.3, 0, 1)
    out.append(np.round(ldr * 255).astype(np.uint8))
np.savez(sys.argv[1], *out)
"""


def build_backgrounds(path: Path = BACKGROUNDS_PATH) -> Path:
    import cv2

    images, sources = [], []
    hdri = _hdri_dir()
    if hdri is not None:
        exrs = sorted(str(p) for p in hdri.glob("*.exr"))
        tmp = path.with_suffix(".hdri.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"}
        subprocess.run([sys.executable, "-c", _READ_EXR, str(tmp), *exrs], check=True, env=env)
        with np.load(tmp) as z:
            images += [z[f"arr_{i}"] for i in range(len(exrs))]
        tmp.unlink()
        sources += [f"blender studiolights/world/{Path(p).name}: CC0 (Poly Haven, Greg Zaal)" for p in exrs]
    try:
        import skimage

        data = Path(skimage.__file__).parent / "data"
        for name, licence in SKIMAGE_SAMPLES.items():
            img = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
            if img is not None:
                images.append(np.ascontiguousarray(img[..., ::-1]))
                sources.append(f"scikit-image data/{name}: {licence}")
    except ImportError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, sources=np.array(sources), **{f"bg{i}": im for i, im in enumerate(images)})
    return path


def load_backgrounds(path: Path = BACKGROUNDS_PATH, build: bool = True) -> tuple[tuple[np.ndarray, ...], list[str]]:
    if not path.is_file():
        if not build:
            return (), []
        build_backgrounds(path)
    with np.load(path) as z:
        sources = [str(s) for s in z["sources"]]
        return tuple(z[f"bg{i}"] for i in range(len(sources))), sources


def load_cutouts(folder: Path = TRAIN_FACES, limit: int = 300) -> tuple[np.ndarray, ...]:
    """Photo cut-outs for occluders (NON-COMMERCIAL source: experiments only, never for shipped weights)."""
    import cv2

    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    out = []
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            out.append(np.ascontiguousarray(img[..., ::-1]))
    return tuple(out)
