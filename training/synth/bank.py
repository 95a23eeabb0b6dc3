"""The albedo bank: de-lit UV albedos baked from CC BY portraits (Face Research Lab London Set) with the
pipeline, plus the expressions ψ fitted to them. Built once and cached under .cache/synth/ (git-ignored)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ...inference.flame.paths import PACKAGE_ROOT

CACHE = PACKAGE_ROOT / ".cache" / "synth"
BANK_PATH = CACHE / "albedo_bank.npz"
FACES_DIR = PACKAGE_ROOT.parent / "shared" / "data" / "faces"
BANK_SOURCE = {
    "name": "Face Research Lab London Set (debruine/webmorphR.stim), resized",
    "licence": "CC BY 4.0",
    "creators": "Lisa DeBruine and Benedict Jones",
    "use": "UV albedos baked with the Facesmith pipeline; fitted expressions",
}


def build_bank(
    faces_dir: Path = FACES_DIR, n_people: int = 32, size: int = 256, out: Path = BANK_PATH, log=print
) -> Path:
    """Fit and bake `n_people` people (neutral + smiling photo each) and save albedos (N, size, size, 3)
    uint8 sRGB, the ψ fitted to every photo and the photo names."""
    import cv2

    from ...inference.options import DEFAULTS
    from ...inference.pipeline import Reconstructor, load_pipeline_model

    people = sorted({p.name[:3] for p in faces_dir.glob("*_03.jpg") if (faces_dir / f"{p.name[:3]}_08.jpg").is_file()})
    step = max(1, len(people) // n_people)
    people = people[::step][:n_people]
    options = dataclasses.replace(DEFAULTS, texture_size=512)
    model = load_pipeline_model(options)
    albedos, expressions, names = [], [], []
    with Reconstructor(options, model) as rec:
        for pid in people:
            t0 = time.perf_counter()
            photos = [faces_dir / f"{pid}_03.jpg", faces_dir / f"{pid}_08.jpg"]
            try:
                head = rec.run(photos, pid)
            except Exception as exc:  # a photo the detector misses: skip the person
                log(f"{pid}: skipped ({exc})")
                continue
            lin = np.clip(head.textures.albedo, 0, 1)
            srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
            small = cv2.resize(srgb.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
            albedos.append(np.round(np.clip(small, 0, 1) * 255).astype(np.uint8))
            for ph, p in zip(photos, head.fit.photos, strict=True):
                expressions.append(np.asarray(p.expression, np.float32))
                names.append(ph.name)
            log(f"{pid}: {time.perf_counter() - t0:.1f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, albedo=np.stack(albedos), expression=np.stack(expressions), photos=np.array(names),
        people=np.array([n[:3] for n in names[::2]]),
    )  # fmt: skip
    return out


def load_arrays(path: Path) -> dict | None:
    """Every array of a cached .npz, or None when it is not there (yet)."""
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_bank(path: Path = BANK_PATH) -> dict | None:
    return load_arrays(path)


PEOPLE_PATH = CACHE / "people_cutouts.npz"


def build_people(
    faces_dir: Path = FACES_DIR, n_people: int = 40, size: int = 256, out: Path = PEOPLE_PATH, log=print
) -> Path:
    """Cut-outs of the people around their faces (hair, ears, neck, shoulders, clothes) from the CC BY neutral
    portraits: GrabCut seeded by the fitted FLAME head, the fitted face region made transparent (the rendered
    face goes there). Saves RGBA (N, size, size, 4) uint8, the eye centres (N, 2, 2) in cut-out pixels and a
    hair colour (N, 3) sRGB in [0, 1]."""
    import cv2

    from ...inference.flame.regions import face_region
    from ...inference.options import DEFAULTS
    from ...inference.pipeline import Reconstructor, load_pipeline_model
    from .raster import rasterize

    people = sorted(p.name[:3] for p in faces_dir.glob("*_03.jpg"))
    step = max(1, len(people) // n_people)
    people = people[::step][:n_people]
    model = load_pipeline_model(DEFAULTS)
    face = face_region(model)
    eyes = [np.nonzero(model.lbs_weights[:, j] > 0.5)[0] for j in (3, 4)]
    rgba_all, eye_all, hair_all, names = [], [], [], []
    with Reconstructor(DEFAULTS, model) as rec:
        for pid in people:
            path = faces_dir / f"{pid}_03.jpg"
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            try:
                fit = rec.fit([path]).photos[0]
            except Exception as exc:
                log(f"{pid}: skipped ({exc})")
                continue
            h, w = bgr.shape[:2]
            k = size / max(h, w)
            small = cv2.resize(bgr, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
            small = cv2.copyMakeBorder(small, 0, size - small.shape[0], 0, size - small.shape[1], cv2.BORDER_REPLICATE)
            xy = fit.camera.project(fit.vertices) * k  # working pixels = original pixels for photos <= 2048
            ras = rasterize(xy, fit.vertices[:, 2], model.faces, size, size)
            mask = np.full((size, size), cv2.GC_PR_BGD, np.uint8)
            mask[size // 8 :, size // 6 : size - size // 6] = cv2.GC_PR_FGD
            mask[ras.triangle >= 0] = cv2.GC_FGD
            mask[:4], mask[:, :4], mask[:, -4:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
            bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
            cv2.grabCut(small, mask, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
            alpha = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8) * 255
            hull = cv2.convexHull(xy[face].astype(np.float32)).astype(np.int32)
            hole = np.zeros_like(alpha)
            cv2.fillPoly(hole, [hull], 255)
            hole = cv2.erode(hole, np.ones((5, 5), np.uint8))
            eye_xy = np.stack([xy[e].mean(0) for e in eyes])
            above = alpha.astype(bool) & ~hole.astype(bool)
            above[int(max(eye_xy[:, 1].min() - 5, 0)) :] = False
            rgb = small[..., ::-1]
            hair = np.median(rgb[above], 0) / 255 if above.sum() > 20 else np.array([0.15, 0.1, 0.07])
            alpha[hole > 0] = 0
            alpha = cv2.GaussianBlur(alpha, (3, 3), 0.8)
            rgba_all.append(np.dstack([rgb, alpha]))
            eye_all.append(eye_xy.astype(np.float32))
            hair_all.append(hair.astype(np.float32))
            names.append(path.name)
            log(f"{pid}: cut out")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, rgba=np.stack(rgba_all), eyes=np.stack(eye_all), hair=np.stack(hair_all), photos=np.array(names)
    )
    return out


def load_people(path: Path = PEOPLE_PATH) -> dict | None:
    return load_arrays(path)
