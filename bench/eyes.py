"""Iris colour: the eyeball texture's iris against the photo's, over the portraits in ../shared/data/faces.

Each portrait is fitted as `facesmith reconstruct` fits it (the pipeline's detector, fit and options; fits are
cached under .cache/bench/eyes/ by file name, so later runs only redo the eyes), and its eye texture baked from
it (texture/eyes.py `bake_eyes`, as the pipeline calls it). The texture's iris colour is read back from the
texture as written (8-bit sRGB PNG): the median of its texels between the pupil and the limbal ring.
The photo's iris colour is measured independently of the texture's measurement: MediaPipe Face Mesh's refined
iris points (centre and 4 on the limbus, per eye) give the iris centre and radius, and the colour is the
median (linear RGB) of the photo's pixels in a disc of 0.6 × that radius at that centre, the brightest and
darkest 10 % (by luminance) left out; the photo's is the mean of its two eyes. (The pipeline's dense landmarks
take their iris centres from MediaPipe too, as the prior of the texture's own circle search: the centres are
not fully independent, the disc, the radius and the pixel selection are.)
Figure: CIE76 ΔE (CIELAB, D65) between the two, median and p90 over the portraits. Goal: median ≤ 8. Also
reported: ΔE against the ring between pupil and limbus (0.45–0.8 × the radius, trimmed alike), since the disc
holds the pupil: large or dilated pupils in pale irises make the disc's colour the pupil's.
Baseline from the same run: the old procedural eye's fixed iris colour (linear 0.25, 0.17, 0.10) against the same
photo colours. Also reported: the texture's iris radius (mm) and the circle search's radius against MediaPipe's.
Usage: python bench/eyes.py [--faces N] [--photos DIR] [--flame PATH] [--contact PNG] [-v] [--no-check]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options
from PIL import Image

from facesmith.inference.errors import FacesmithError
from facesmith.inference.images import load_photo
from facesmith.inference.landmarks.detect import MediaPipeBackend
from facesmith.inference.pipeline import Reconstructor
from facesmith.inference.result import FitResult
from facesmith.inference.rig import eye_geometry
from facesmith.inference.texture.eyes import (
    FALLBACK_IRIS_LINEAR,
    bake_eyes,
    delta_e76,
    texture_iris_colour,
)
from facesmith.inference.texture.maps import TextureSet, linear_to_srgb, srgb_to_linear, write_eyes_png

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench" / "eyes"
# MediaPipe's refined iris points: centre, then 4 on the limbus (the subject's right eye, then left).
MP_IRISES = ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477)))
REFERENCE_DISC = 0.6  # of the iris radius
REFERENCE_TRIM = 10.0  # percent off each end, by luminance
# A second reference, reported beside the goal's: the ring between the pupil and the limbus only. The goal's disc
# holds the pupil (a third of its area at a 3.5 mm pupil, most of it when dilated), which its trim does not remove.
RING = (0.45, 0.8)
GOAL_MEDIAN = 8.0


def reference_colour(
    linear: np.ndarray, centre: np.ndarray, radius: float, disc: tuple[float, float] = (0.0, REFERENCE_DISC)
) -> np.ndarray | None:
    """Median linear RGB of the pixels between disc[0] and disc[1] × radius from centre, luminance extremes
    trimmed."""
    h, w = linear.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2
    inside = (d2 <= (disc[1] * radius) ** 2) & (d2 >= (disc[0] * radius) ** 2)
    pix = linear[inside]
    if len(pix) < 5:
        return None
    lum = pix @ np.array([0.2126, 0.7152, 0.0722])
    lo, hi = np.percentile(lum, (REFERENCE_TRIM, 100 - REFERENCE_TRIM))
    return np.median(pix[(lum >= lo) & (lum <= hi)], axis=0)


def photo_irises(mesh: MediaPipeBackend, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(centre, radius) in working px of each iris MediaPipe finds on the largest face; [] without one."""
    faces = mesh.detect(rgb)
    if not faces:
        return []
    pts = max(faces, key=lambda f: f.size).points
    if len(pts) < 478:
        return []
    return [(pts[c], float(np.mean(np.linalg.norm(pts[list(ring)] - pts[c], axis=1)))) for c, ring in MP_IRISES]


def fitted(rec: Reconstructor, path: Path) -> FitResult:
    """The pipeline's fit of one photo, cached by file name and size."""
    stem = CACHE / f"{path.stem}-{path.stat().st_size}"
    if stem.with_suffix(".json").is_file():
        return FitResult.load(stem)
    result = rec.fit([path])
    CACHE.mkdir(parents=True, exist_ok=True)
    result.save(stem)
    return result


def as_written(textures: TextureSet) -> np.ndarray:
    """The eye texture as NAME_eyes.png holds it (8-bit sRGB), back in linear RGB."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = write_eyes_png(textures, Path(tmp) / "eyes.png")
        data = io.BytesIO(path.read_bytes())
    return srgb_to_linear(np.asarray(Image.open(data).convert("RGB"), np.float32) / 255.0)


def contact_row(rgb: np.ndarray, irises, texture_srgb: np.ndarray, photo_lin, tex_lin) -> np.ndarray:
    """One row of the contact sheet: both eyes' crops, the photo's and the texture's colour, the texture."""
    tiles = []
    for centre, radius in irises:
        x0, y0 = int(centre[0] - 4 * radius), int(centre[1] - 2.4 * radius)
        crop = Image.fromarray(rgb[max(y0, 0) : y0 + int(4.8 * radius), max(x0, 0) : x0 + int(8 * radius)])
        tiles.append(np.asarray(crop.resize((200, 120), Image.BICUBIC)))
    for lin in (photo_lin, tex_lin):
        tiles.append(np.broadcast_to(np.round(linear_to_srgb(lin) * 255).astype(np.uint8), (120, 40, 3)))
    tiles.append(np.asarray(Image.fromarray(texture_srgb).resize((120, 120), Image.LANCZOS)))
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--faces", type=int, default=0, help="the first N portraits only")
    parser.add_argument("--flame")
    parser.add_argument("--contact", type=Path, help="write a contact sheet PNG of the first 24 portraits")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_check_argument(parser)
    args = parser.parse_args()
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    paths = paths[: args.faces] if args.faces else paths
    options = pipeline_options(args.flame)
    model = load_bench_model(args.flame)
    mesh = MediaPipeBackend()
    fallback = np.array(FALLBACK_IRIS_LINEAR)
    de, de_base, de_ring, radius_mm, radius_ratio, skipped, rows, ms = [], [], [], [], [], [], [], []
    with Reconstructor(options, model) as rec:
        for path in paths:
            try:
                result = fitted(rec, path)
            except FacesmithError as exc:
                skipped.append(f"{path.name}: {exc}")
                continue
            photo = load_photo(path, options.working_side)
            linear = srgb_to_linear(photo.rgb.astype(np.float32) / 255.0)
            irises = photo_irises(mesh, photo.rgb)
            refs = [c for c in (reference_colour(linear, ctr, r) for ctr, r in irises) if c is not None]
            if not refs:
                skipped.append(f"{path.name}: MediaPipe found no irises")
                continue
            truth = np.mean(refs, axis=0)
            rings = [c for c in (reference_colour(linear, ctr, r, RING) for ctr, r in irises) if c is not None]
            t0 = time.perf_counter()
            fit = result.photos[0]
            eyes = bake_eyes([(photo.rgb, photo.scale, fit)], eye_geometry(rec.model, result.neutral_vertices))
            ms.append(1000 * (time.perf_counter() - t0))
            textures = TextureSet(np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32), eyes=eyes)
            shown = texture_iris_colour(as_written(textures), eyes.iris_angle)
            de.append(float(delta_e76(shown, truth)))
            de_base.append(float(delta_e76(fallback, truth)))
            de_ring.append(float(delta_e76(shown, np.mean(rings, axis=0))) if rings else np.nan)
            radius_mm.append(eyes.iris_radius_mm)
            for m in eyes.measurements:
                side = 0 if m.eye == "right" else 1
                if side < len(irises):
                    radius_ratio.append(m.radius_px / photo.scale / irises[side][1])
            if args.verbose:
                srgb = np.round(linear_to_srgb(np.stack([truth, shown])) * 255).astype(int).tolist()
                print(f"{path.name}: ΔE {de[-1]:.1f} (fixed {de_base[-1]:.1f}, ring {de_ring[-1]:.1f}) photo {srgb[0]} texture {srgb[1]} "
                      f"r {eyes.iris_radius_mm:.2f} mm", flush=True)  # fmt: skip
            if args.contact and len(rows) < 24:
                tex = np.round(linear_to_srgb(eyes.image) * 255).astype(np.uint8)
                rows.append(contact_row(photo.rgb, irises, tex, truth, shown))
    mesh.close()
    if args.contact and rows:
        width = max(r.shape[1] for r in rows)
        sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
        Image.fromarray(sheet).save(args.contact)
    de_a, base_a = np.array(de), np.array(de_base)
    result = {
        "portraits": len(paths), "scored": len(de), "skipped": skipped,
        "delta_e_median": round(float(np.median(de_a)), 2) if de else None,
        "delta_e_p90": round(float(np.percentile(de_a, 90)), 2) if de else None,
        "baseline_fixed_median": round(float(np.median(base_a)), 2) if de else None,
        "baseline_fixed_p90": round(float(np.percentile(base_a, 90)), 2) if de else None,
        "delta_e_ring_median": round(float(np.nanmedian(de_ring)), 2) if de else None,
        "delta_e_ring_p90": round(float(np.nanpercentile(de_ring, 90)), 2) if de else None,
        "iris_radius_mm_median": round(float(np.median(radius_mm)), 2) if de else None,
        "search_radius_over_mediapipe_median": round(float(np.median(radius_ratio)), 3) if radius_ratio else None,
        "ms_per_head_median": round(float(np.median(ms)), 1) if ms else None,
    }  # fmt: skip
    print(f"iris ΔE over {len(de)} portraits: median {result['delta_e_median']}, p90 {result['delta_e_p90']} "
          f"(fixed colour: {result['baseline_fixed_median']}, {result['baseline_fixed_p90']}; against the pupil-free "
          f"ring: {result['delta_e_ring_median']}, {result['delta_e_ring_p90']})")  # fmt: skip
    goals = [
        Goal("iris_delta_e_median", result["delta_e_median"], "<=", GOAL_MEDIAN, result["baseline_fixed_median"],
             "fixed iris colour"),
    ]  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
