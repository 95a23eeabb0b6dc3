"""False faces on non-face images, and the detection rate on real faces, with and without the face score.

Non-face images (made here from what is installed, nothing downloaded), in two sets reported apart:
- the first 210: scikit-image's bundled photos without people (the cat, the rocket, coffee, coins, ...) whole and in
  crops, the astronaut's suit without his face, crops of the CC0 HDRIs in the bpy wheel (tone-mapped), and noise,
  blur and pattern textures;
- 150 added later: scikit-image's other bundled images without people (blobs, cells, the Shepp-Logan head phantom,
  a motorcycle), matplotlib's sample pictures, ../shared/data/bad_inputs' landscape and noise, close crops of the
  HDRIs (a tenth to a quarter of their short side: single objects filling the frame), and textures of blobs, rings
  and ovals (round, shaded, face-sized shapes).
Faces: the portraits in ../shared/data/faces and every `--utk-step`-th UTKFace crop in ../shared/data/train_faces.

Each image goes through the detector the pipeline uses (MediaPipe, dlib when MediaPipe finds none, as
LandmarkDetector); a face counts when its face score (landmarks.detect.FaceScorer) reaches FACE_SCORE_MIN.
Baseline from the same run: no face score (every face a backend returns counts), i.e. the behaviour before.
Goals: 0 false faces on ≥ 200 non-face images; the portraits' and UTKFace's detection rates no lower than the
baseline's. Also printed: the highest non-face score and the lowest face scores (where the threshold can lie).
Usage: python bench/false_faces.py [--utk-step 20] [--min-score X] [--seed 0] [-v] [--no-check]   (--utk-step 1: all 6,000)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _common import SHARED_FACES, Goal, add_check_argument, finish
from PIL import Image

from facesmith.inference.landmarks.detect import FaceLandmarks, LandmarkDetector
from facesmith.inference.options import FACE_SCORE_MIN

UTK_FACES = SHARED_FACES.parent / "train_faces"
# scikit-image photos with no person in them (camera, astronaut and lfw_subset show faces: astronaut is cropped)
SKIMAGE_PHOTOS = ("chelsea", "rocket", "coffee", "horse", "clock", "brick", "grass", "gravel", "coins", "moon",
                  "page", "text", "logo", "colorwheel", "hubble_deep_field", "immunohistochemistry", "retina",
                  "checkerboard")  # fmt: skip
# The added set: scikit-image's other bundled images without people, matplotlib's sample pictures without people
# (its grace_hopper.jpg is a portrait), the shared bad inputs that are no faces (no_face_coffee.png is skimage's coffee)
SKIMAGE_MORE = ("binary_blobs", "cell", "microaneurysms", "shepp_logan_phantom", "stereo_motorcycle")
MATPLOTLIB_SAMPLES = ("Minduka_Present_Blue_Pack.png", "logo2.png")
BAD_INPUTS = SHARED_FACES.parent / "bad_inputs"
BAD_INPUT_NON_FACES = ("no_face_landscape.jpg", "noise_256.png")
CROP_SIDE = 512  # crops are resized to this square (a portrait's size)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any scikit-image array (grey, RGBA, float or bool) as contiguous (H, W, 3) uint8."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def crops(
    image: np.ndarray, count: int, rng: np.random.Generator, sides: tuple[float, float] = (0.25, 1.0)
) -> Iterator[np.ndarray]:
    """`count` random square crops (`sides`: a quarter to all of the short side), resized to CROP_SIDE²."""
    h, w = image.shape[:2]
    for _ in range(count):
        side = max(1, int(rng.uniform(*sides) * min(h, w)))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        window = Image.fromarray(image[y0 : y0 + side, x0 : x0 + side])
        yield np.asarray(window.resize((CROP_SIDE, CROP_SIDE), Image.LANCZOS))


def tone_map(hdr: np.ndarray) -> np.ndarray:
    """Linear HDR radiance -> 8-bit sRGB-ish: exposure to a mid-grey mean, Reinhard, gamma 2.2."""
    hdr = np.maximum(np.nan_to_num(hdr[..., :3].astype(np.float64)), 0.0)
    hdr *= 0.18 / max(float(np.exp(np.log(hdr + 1e-4).mean())), 1e-6)
    return (np.clip((hdr / (1.0 + hdr)) ** (1 / 2.2), 0, 1) * 255).astype(np.uint8)


def hdri_paths() -> list[Path]:
    """The world HDRIs Blender ships (CC0, see license.txt beside them). (bpy.utils.system_resource("DATAFILES")
    is empty in the bpy module: none were found.)"""
    from facesmith.training.light_prior import hdri_dir

    return sorted(hdri_dir().glob("*.exr"))


def read_exr(path: Path) -> np.ndarray:
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # read when cv2 is imported
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return bgr[..., 2::-1]


def textures(count: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Noise at several blurs, gradients, stripes and checkerboards: CROP_SIDE² RGB."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:CROP_SIDE, 0:CROP_SIDE] / CROP_SIDE
    for i in range(count):
        kind = ("noise", "blurred", "gradient", "stripes", "checker")[i % 5]
        if kind == "noise":
            img = rng.uniform(0, 255, (CROP_SIDE, CROP_SIDE, 3))
        elif kind == "blurred":
            sigma = float(rng.uniform(2, 30))
            img = gaussian_filter(rng.normal(0, 1, (CROP_SIDE, CROP_SIDE, 3)), (sigma, sigma, 0))
            img = (img - img.min()) / max(np.ptp(img), 1e-9) * 255
        elif kind == "gradient":
            a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            t = (np.cos(rng.uniform(0, np.pi)) * xx + np.sin(rng.uniform(0, np.pi)) * yy)[..., None]
            img = a + (b - a) * (t - t.min()) / max(np.ptp(t), 1e-9)
        elif kind == "stripes":
            wave = np.sin(2 * np.pi * rng.uniform(3, 40) * (xx + rng.uniform(-1, 1) * yy))
            img = (0.5 + 0.5 * wave)[..., None] * rng.uniform(0, 255, 3)
        else:
            n = int(rng.integers(2, 24))
            cells = (np.floor(xx * n) + np.floor(yy * n)) % 2
            img = cells[..., None] * rng.uniform(0, 255, 3) + (1 - cells[..., None]) * rng.uniform(0, 255, 3)
        yield f"texture_{kind}_{i:02d}", np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def shapes(count: int, rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray]]:
    """Round things a face detector might take for a head: thresholded blurred noise (blobs), concentric rings, and
    shaded ovals of a face's proportions on a plain or noisy ground (no eyes or mouth drawn): CROP_SIDE² RGB."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:CROP_SIDE, 0:CROP_SIDE] / CROP_SIDE
    for i in range(count):
        kind = ("blobs", "rings", "oval")[i % 3]
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if kind == "blobs":
            sigma = float(rng.uniform(8, 40))
            field = gaussian_filter(rng.normal(0, 1, (CROP_SIDE, CROP_SIDE)), sigma)
            t = gaussian_filter((field > np.median(field)).astype(np.float64), 3.0)
        elif kind == "rings":
            cx, cy, period = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.02, 0.2)
            t = 0.5 + 0.5 * np.cos(2 * np.pi * np.hypot(xx - cx, yy - cy) / period)
        else:
            cx, cy, rx = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.12, 0.3)
            r = np.hypot((xx - cx) / rx, (yy - cy) / (1.35 * rx))  # a face's height is about 1.35 its width
            t = np.clip(1.0 - r, 0.0, 1.0) ** 0.5 * (0.6 + 0.4 * (xx - cx) / rx).clip(0, 1)  # lit from one side
            t += rng.uniform(0, 0.15) * rng.normal(0, 1, t.shape)
        img = a + (b - a) * t[..., None]
        yield f"shape_{kind}_{i:02d}", np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def non_face_images(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """The first non-face set (210 images with the default counts), deterministic for a seed."""
    import skimage.data

    rng = np.random.default_rng(seed)
    for name in SKIMAGE_PHOTOS:
        image = to_rgb8(getattr(skimage.data, name)())
        yield name, image
        for i, crop in enumerate(crops(image, 5, rng)):
            yield f"{name}_crop{i}", crop
    suit = to_rgb8(skimage.data.astronaut())[260:, :]  # below his face (rows 71-177)
    yield "astronaut_suit", suit
    for i, crop in enumerate(crops(suit, 5, rng)):
        yield f"astronaut_suit_crop{i}", crop
    for path in hdri_paths():
        image = tone_map(read_exr(path))
        yield f"hdri_{path.stem}", image
        for i, crop in enumerate(crops(image, 6, rng)):
            yield f"hdri_{path.stem}_crop{i}", crop
    yield from textures(40, rng)


def more_non_face_images(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """The added non-face set (150 images with the default counts), deterministic for a seed; a source that is not
    installed here is left out."""
    import skimage.data

    rng = np.random.default_rng(1000 + seed)  # not the first set's draws
    found: list[tuple[str, np.ndarray]] = []
    for name in SKIMAGE_MORE:
        image = getattr(skimage.data, name)()
        found.append((name, to_rgb8(image[0] if isinstance(image, tuple) else image)))  # the motorcycle: left view
    try:
        import matplotlib.cbook

        found += [
            (Path(n).stem, to_rgb8(np.asarray(Image.open(matplotlib.cbook.get_sample_data(n)))))
            for n in MATPLOTLIB_SAMPLES
        ]
    except ImportError:
        pass
    found += [(Path(n).stem, to_rgb8(np.asarray(Image.open(BAD_INPUTS / n).convert("RGB"))))
              for n in BAD_INPUT_NON_FACES if (BAD_INPUTS / n).is_file()]  # fmt: skip
    for name, image in found:
        yield name, image
        for i, crop in enumerate(crops(image, 5, rng)):
            yield f"{name}_crop{i}", crop
    for path in hdri_paths():
        image = tone_map(read_exr(path))
        for i, crop in enumerate(crops(image, 6, rng, sides=(0.1, 0.25))):
            yield f"hdri_{path.stem}_close{i}", crop
    yield from shapes(48, rng)


def scored_detection(detector: LandmarkDetector, rgb: np.ndarray) -> tuple[bool, float, float]:
    """As LandmarkDetector.detect (the fallback only when the primary has no face): (a face without the face
    score, the best score of the faces the detector would return, the best score of any face found)."""
    primary = detector.scored(detector.primary_name, rgb)
    kept = [f for f in primary if f.score >= detector.min_score]
    fallback: list[FaceLandmarks] = []
    if detector.fallback_name and (not primary or not kept):
        fallback = detector.scored(detector.fallback_name, rgb)
    baseline = bool(primary or fallback)
    used = kept or [f for f in fallback if f.score >= detector.min_score] or primary + fallback
    scores = [f.score for f in primary + fallback]
    return baseline, max((f.score for f in used), default=0.0), max(scores, default=0.0)


def false_faces(
    detector: LandmarkDetector, images: Iterator[tuple[str, np.ndarray]], min_score: float, verbose: bool
) -> dict:
    """One non-face set's figures: images, false faces with the face score (and their names) and without it, the
    highest face score of any face found."""
    names, baseline, n, top = [], 0, 0, (0.0, "")
    for name, rgb in images:
        old, score, best = scored_detection(detector, rgb)
        n += 1
        baseline += old
        top = max(top, (best, name))
        if score >= min_score:
            names.append(name)
        if verbose and old:
            print(f"non-face {name}: best face score {best:.3f}", file=sys.stderr)
    return {"images": n, "false_faces": len(names), "false_faces_baseline": baseline,
            "highest_non_face_score": round(top[0], 4), "highest_non_face": top[1], "false_face_names": names}  # fmt: skip


def face_paths(folder: Path, step: int) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".jpg")[::step] if folder.is_dir() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utk-step", type=int, default=20, help="every N-th UTKFace crop (1: all 6,000)")
    parser.add_argument("--min-score", type=float, default=FACE_SCORE_MIN)
    parser.add_argument(
        "--seed", type=int, default=0, help="the draw of the non-face crops (the threshold was set on 0, 1)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    add_check_argument(parser)
    args = parser.parse_args()
    goals, result = [], {"min_score": args.min_score}
    with LandmarkDetector("mediapipe", "dlib", min_score=args.min_score) as detector:
        sets = {"first": non_face_images(args.seed), "added": more_non_face_images(args.seed)}
        figures = {label: false_faces(detector, images, args.min_score, args.verbose) for label, images in sets.items()}
        n = sum(f["images"] for f in figures.values())
        false_new = [name for f in figures.values() for name in f["false_face_names"]]
        false_old = sum(f["false_faces_baseline"] for f in figures.values())
        top = max(figures.values(), key=lambda f: f["highest_non_face_score"])
        result.update(non_face_images=n, false_faces=len(false_new), false_faces_baseline=false_old,
                      highest_non_face_score=top["highest_non_face_score"], highest_non_face=top["highest_non_face"],
                      false_face_names=false_new, non_face_sets=figures)  # fmt: skip
        goals.append(Goal("false_faces", len(false_new), "<=", 0, false_old, "no face score",
                          goal=f"0 of {n} non-face images"))  # fmt: skip
        goals.append(Goal("non_face_images", n, ">=", 200))
        for label, folder, step in (("portraits", SHARED_FACES, 1), ("utkface", UTK_FACES, args.utk_step)):
            paths = face_paths(folder, step)
            if not paths:
                print(f"{label}: {folder} missing, skipped", file=sys.stderr)
                continue
            found_old, found_new, scores = 0, 0, []
            for path in paths:
                old, score, _ = scored_detection(detector, np.asarray(Image.open(path).convert("RGB")))
                found_old += old
                found_new += score >= args.min_score
                if old:
                    scores.append(score)
                if args.verbose and old and score < args.min_score:
                    print(f"{label} {path.name}: face score {score:.3f}, lost", file=sys.stderr)
            rate, base = found_new / len(paths), found_old / len(paths)
            low = sorted(scores)[:3]
            result[label] = {"images": len(paths), "rate": rate, "rate_baseline": base,
                             "lowest_scores": [round(s, 4) for s in low]}  # fmt: skip
            goals.append(Goal(f"{label}_detection_rate", rate, ">=", base, base, "no face score",
                              goal=f">= baseline ({len(paths)} images)"))  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
