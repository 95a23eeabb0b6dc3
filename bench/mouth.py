"""The open mouth: does the rendered head show the photo's teeth where the photo's lips part?

For smiling portraits (NNN_08: one studio, most show a row of upper teeth) the whole pipeline makes the head and
Blender renders the mouth at the photo's camera as the preview renders it (addon/build_scene.py: Cycles, key
light and grey world), the mouth's box only, at 4 render px per photo px. Inside the photo's inner lip line
(dlib's 68-point shape predictor, points 60–67: a detector the pipeline does not use, so the polygon is the
photo's, not the fit's) the share of teeth pixels and the mean lightness are compared between the photo and the
render (the same polygon: the render is at the photo's camera). A teeth pixel is, against the same image's skin
around the lips (the median CIELAB of the box outside the outer lip line), about as light or lighter
(L* ≥ skin − TEETH_DL, and ≥ TEETH_MIN_L) and clearly less red for its lightness (a*/L* ≤ TEETH_RED × the skin's).
Measured: the photos' teeth L* 42–89, a*/L* 0–0.08; their skin a*/L* 0.13 (002_08, light) to 0.20 (137_08, dark),
their lips 0.34–0.47, their mouths' dark inside L* < 30; the render's teeth a*/L* 0–0.02, its skin 0.07, its lips
and the lips' inside (where the photo's teeth were kept out of the albedo) ≈ 0.3. An absolute a* test takes the
render's skin for teeth and misses the photo's teeth in dark skin (skin a* 4 at L* 20, teeth a* 1–4).
Independent truth: the photo's own pixels inside its own inner lip line (what the render shows there, lips
included when the fitted lips part less than the photo's, counts).
Goals: mean |render − photo| teeth share ≤ GOAL_SHARE over the portraits, mean |ΔL*| ≤ GOAL_L; and, what limits
both (the fit's, not the parts'), the fitted lips' opening at the photo's camera ≥ GOAL_OPENING × the photo's
(median over the portraits; dlib's points 61–63 to 65–67 against the fitted head's) — and, so that a fit that
parts every mouth fails, on --closed neutral portraits whose mouths dlib reads closed (inner gap under
CLOSED_MAX_PX) the fitted lips' opening ≤ GOAL_CLOSED % of the eye distance (median; the baseline is the photos' own).
Baseline in the same run: the same heads with the parts as shipped before they were lowered under the lips (teeth, gums
and tongue TEETH_DROP_M higher: `baseline_parts`).
Mouths the photo shows closed (dlib's inner lips less than --min-open px apart) are passed over: the first --faces
open ones of a fixed shuffle of the portraits (of even- or odd-numbered people with --people) are measured.
Measured (2 loaded cores, `--faces 20`, about 6.5 min each): even-numbered people (where TEETH_DROP_M was chosen)
teeth-share error 0.202 (old 0.294), lightness error 12.5 L* (old 20.4); odd-numbered 0.224 (old 0.196), 11.7
(old 16.5); the fitted lips open a median 0.50 / 0.41 × the photo's. Where the fitted lips part about as far as the
photo's the parts now fill them with teeth; on odd-numbered people that also puts a bright row of teeth into
barely parted mouths whose gap the photo shows dark (119_08, 121_08, 137_08): the teeth-share error rises there.
Where the fitted lips stay closed (a third of the mouths) nothing in the parts can help: the fit's lip opening is
the limit.

Usage: python bench/mouth.py [--faces N] [--closed N] [--people all|even|odd] [--samples 16] [--flame PATH]
       [--no-check]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
TEXTURE_SIZE = 512
RENDER_SCALE = 4  # render px per fitted-photo px (the mouth's box only is rendered)
BOX_MARGIN_PX = 4  # around the outer lip line, fitted-photo px
TEETH_DL = 5.0  # CIELAB L* (0-100): teeth are at least the skin's lightness less this
TEETH_MIN_L = 40.0  # and at least this light (a dark mouth's neutral black is not teeth)
TEETH_RED = 0.5  # teeth's a*/L* at most this share of the skin's (lips, gums and tongue are redder than skin)
SKIN_RING_PX = 2  # fitted-photo px: the skin reference starts this far outside the outer lip line
PHOTO_PX = 512  # the long side --min-open is counted on
GOAL_SHARE = 0.20
GOAL_L = 12.0
GOAL_OPENING = 0.8
CLOSED_MAX_PX = 1.0  # a neutral portrait's mouth counts as closed below this inner-lip gap (dlib, PHOTO_PX px)
GOAL_CLOSED = 4.0  # % of the eye distance: the fitted lips' opening where the photo's are closed (median)


def dlib68(rgb: np.ndarray):
    """dlib's 68 points (x, y px) of the largest face, or None."""
    import dlib
    import face_recognition_models as models

    global _DLIB
    if "_DLIB" not in globals():
        _DLIB = dlib.get_frontal_face_detector(), dlib.shape_predictor(models.pose_predictor_model_location())
    detector, predictor = _DLIB
    boxes = list(detector(rgb, 1))
    if not boxes:
        return None
    shape = predictor(rgb, max(boxes, key=lambda b: b.area()))
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)


def lab(rgb01: np.ndarray) -> np.ndarray:
    """CIELAB (L* 0-100) of sRGB values in 0..1, (..., 3)."""
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb01, np.float32), cv2.COLOR_RGB2LAB)


def redness(lab_px: np.ndarray) -> np.ndarray:
    return lab_px[..., 1] / np.maximum(lab_px[..., 0], 1.0)


def teeth(lab_px: np.ndarray, skin_l: float, skin_red: float) -> np.ndarray:
    """Teeth pixels of CIELAB `lab_px` (..., 3) against the image's skin lightness and redness (a*/L*)."""
    light = lab_px[..., 0] >= max(skin_l - TEETH_DL, TEETH_MIN_L)
    return light & (redness(lab_px) <= TEETH_RED * skin_red)


def polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points * 8).astype(np.int32)], 1, shift=3)
    return mask > 0


def render_box(head, box: tuple[float, float, float, float], samples: int, folder: Path, parts=None) -> np.ndarray:
    """RGB (sRGB 0..1) of the scene camera's render over `box` (x0, y0, x1, y1 in fitted-photo px), composited
    on the preview's grey, RENDER_SCALE px per photo px. `parts` replaces the rig's mouth parts."""
    import dataclasses

    import bpy
    from PIL import Image

    from facesmith.addon.build_scene import configure_cpu_render, render_png
    from facesmith.addon.head import build_head
    from facesmith.addon.output import reset_file

    reset_file()
    rig = head.rig if parts is None else dataclasses.replace(head.rig, mouth=parts)
    build_head(rig, head.textures)
    scene = bpy.context.scene
    configure_cpu_render(scene)
    w, h = scene.render.resolution_x, scene.render.resolution_y
    r = scene.render
    r.use_border, r.use_crop_to_border = True, True
    x0, y0, x1, y1 = box
    r.border_min_x, r.border_max_x = max(0.0, x0 / w), min(1.0, x1 / w)
    r.border_min_y, r.border_max_y = max(0.0, 1 - y1 / h), min(1.0, 1 - y0 / h)  # Blender's y runs up
    path = render_png(folder / "mouth.png", max_side=RENDER_SCALE * max(w, h), samples=samples)
    rgba = np.asarray(Image.open(path).convert("RGBA"), np.float32) / 255.0
    return rgba[..., :3] * rgba[..., 3:] + 0.5 * (1 - rgba[..., 3:])


def measure(
    photo_rgb: np.ndarray, image_size, inner: np.ndarray, outer: np.ndarray, box, render: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:  # fmt: skip
    """Teeth share and mean L* inside the inner lip polygon (`inner`, fitted-photo px) in the photo and the render;
    `outer` the outer lip line, outside which the skin reference is taken. Also the images (sRGB 0..1) with the
    polygon's teeth pixels in green, for a look."""
    import cv2
    from PIL import Image

    x0, y0, x1, y1 = box
    out, shown = {}, {}
    # The photo's box resampled to the render's grid, so both are counted on the same pixels.
    scale = photo_rgb.shape[1] / image_size[0]
    crop = Image.fromarray(photo_rgb).resize(
        render.shape[1::-1], Image.BILINEAR, box=(x0 * scale, y0 * scale, x1 * scale, y1 * scale)
    )
    k = render.shape[1] / (x1 - x0)
    inside = polygon_mask(render.shape[:2], (inner - [x0, y0]) * k)
    ring = round(SKIN_RING_PX * k)
    skin = ~cv2.dilate(polygon_mask(render.shape[:2], (outer - [x0, y0]) * k).astype(np.uint8),
                       np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)).astype(bool)  # fmt: skip
    for name, rgb in (("photo", np.asarray(crop, np.float32) / 255.0), ("render", render)):
        image = lab(rgb)
        found = inside & teeth(image, float(np.median(image[skin][:, 0])), float(np.median(redness(image[skin]))))
        px = image[inside]
        out[f"{name}_teeth"] = float(found.sum() / max(inside.sum(), 1))
        shown[f"{name}_plain"] = rgb
        shown[name] = np.where(found[..., None], [0.0, 1.0, 0.0], rgb)
        out[f"{name}_L"] = float(px[:, 0].mean()) if len(px) else 0.0
    out["pixels"] = int(inside.sum())
    return out, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=20, help="N open-mouthed smiling portraits (0: all)")
    parser.add_argument("--people", choices=("all", "even", "odd"), default="all", help="by the person's number")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--min-open", type=float, default=2.0, help="skip mouths whose inner polygon is thinner (px)")
    parser.add_argument("--closed", type=int, default=20, help="N neutral portraits with closed mouths (0: none)")
    parser.add_argument("--flame", default=None)
    parser.add_argument("--save", default=None, help="folder for photo | baseline | render crops")
    add_check_argument(parser)
    args = parser.parse_args()

    from PIL import Image

    from facesmith.inference.pipeline import Reconstructor

    model = load_bench_model(args.flame)

    def shuffled(pattern: str) -> list[Path]:  # a sample spread over the set
        paths = sorted(SHARED_FACES.glob(pattern))
        if args.people != "all":
            paths = [p for p in paths if int(p.stem.split("_")[0]) % 2 == (args.people == "odd")]
        return [paths[i] for i in np.random.default_rng(0).permutation(len(paths))]

    paths = shuffled("*_08.jpg")
    rec = Reconstructor(pipeline_options(args.flame, texture_size=TEXTURE_SIZE), model)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facesmith-mouth-") as tmp:
        for path in paths:
            if args.faces and len(rows) == args.faces:
                break
            photo = np.asarray(Image.open(path).convert("RGB"))
            points = dlib68(photo)
            if points is None:
                print(f"{path.stem}: dlib found no face, skipped")
                continue
            # In fitted-photo px (the pipeline's working size): what --min-open and the boxes are in.
            size = PHOTO_PX / max(photo.shape[:2])
            opening = size * inner_gap(points)
            if opening < args.min_open:
                continue
            head = rec.run([path])
            fit = head.fit.photos[0]
            assert head.photo_rgb.shape == photo.shape, path
            points = points * fit.image_size[0] / photo.shape[1]
            inner = points[60:68]
            x0, y0 = np.floor(points[48:60].min(0)) - BOX_MARGIN_PX
            x1, y1 = np.ceil(points[48:60].max(0)) + BOX_MARGIN_PX
            box = (x0, y0, x1, y1)
            fitted_lips = fit.model_landmarks68_px  # the fitted head's lips, at the photo's camera
            fitted = inner_gap(fitted_lips)
            opening = inner_gap(points)
            row = {"name": path.stem, "opening_px": float(opening), "fitted_opening_px": float(fitted)}
            for mode, parts in (("new", None), ("old", baseline_parts(head))):
                render = render_box(head, box, args.samples, Path(tmp), parts)
                m, shown = measure(head.photo_rgb, fit.image_size, inner, points[48:60], box, render)
                row.update({f"{mode}_{k}": v for k, v in m.items() if k.startswith("render")})
                row.update({k: v for k, v in m.items() if k.startswith("photo")})
                if args.save:
                    save_crop(Path(args.save) / f"{path.stem}_{mode}.png", render, shown)
            rows.append(row)
            print(f"{path.stem}: open {opening:4.1f} px (fitted {fitted:4.1f})  teeth photo {row['photo_teeth']:.2f} render "
                  f"{row['new_render_teeth']:.2f} (old {row['old_render_teeth']:.2f})  L* photo {row['photo_L']:.1f} "
                  f"render {row['new_render_L']:.1f} (old {row['old_render_L']:.1f})", flush=True)  # fmt: skip
    closed = closed_mouths(rec, shuffled("*_03.jpg"), args.closed) if args.closed else []
    print(f"{len(rows)} open and {len(closed)} closed mouths in {time.perf_counter() - t0:.0f} s")

    def err(mode: str, key: str) -> float:
        return float(np.mean([abs(r[f"{mode}_render_{key}"] - r[f"photo_{key}"]) for r in rows])) if rows else None

    ratio = float(np.median([r["fitted_opening_px"] / r["opening_px"] for r in rows])) if rows else None

    def median(found: list[dict], key: str) -> float | None:
        return round(float(np.median([r[key] for r in found])), 2) if found else None

    kind = "independent truth: the photo's pixels inside dlib's inner lip line; render with the preview's light"
    goals = [
        Goal("mouth_teeth_share_error", err("new", "teeth"), "<=", GOAL_SHARE, round(err("old", "teeth"), 3), "old", kind),
        Goal("mouth_lightness_error_L", err("new", "L"), "<=", GOAL_L, round(err("old", "L"), 2), "old", kind),
        # Not the parts' doing but what limits them: the fitted lips' opening against the photo's (dlib's points 61-63
        # to 65-67, median ratio). The parts fill the fitted opening; they cannot show teeth where the lips are closed.
        Goal("mouth_fitted_opening_ratio", ratio, ">=", GOAL_OPENING, kind=kind),
        # ... and not by parting every mouth: where the photo's lips are closed, the fitted ones stay closed.
        Goal("mouth_closed_fitted_opening_pct", median(closed, "fitted_pct"), "<=", GOAL_CLOSED,
             median(closed, "photo_pct"), "the photos' own (dlib)", kind),
    ]  # fmt: skip
    summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("name",)} if rows else {}
    report = {"portraits": len(rows), "people": args.people, "means": summary, "rows": rows, "closed": closed}
    finish(report, goals, not args.no_check)


def inner_gap(points68: np.ndarray) -> float:
    """The inner lips' opening (points 65-67 below 61-63, px; negative where the fitted lips overlap)."""
    return float(points68[[65, 66, 67], 1].mean() - points68[[61, 62, 63], 1].mean())


def closed_mouths(rec, paths: list[Path], count: int) -> list[dict]:
    """The fitted lips on the first `count` neutral portraits whose mouths dlib reads closed: their opening at the
    photo's camera, % of the eye distance (what a landmark network that parts every mouth would fail)."""
    from PIL import Image

    rows = []
    for path in paths:
        if len(rows) == count:
            break
        photo = np.asarray(Image.open(path).convert("RGB"))
        points = dlib68(photo)
        if points is None or PHOTO_PX / max(photo.shape[:2]) * inner_gap(points) > CLOSED_MAX_PX:
            continue
        fit = rec.fit([path]).photos[0]  # the fit alone: no textures, no rig
        points = points * fit.image_size[0] / photo.shape[1]
        eyes = float(np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0)))
        rows.append({"name": path.stem, "photo_pct": 100 * inner_gap(points) / eyes,
                     "fitted_pct": 100 * inner_gap(fit.model_landmarks68_px) / eyes})  # fmt: skip
        print(f"{path.stem}: closed, fitted opening {rows[-1]['fitted_pct']:.1f} % of the eye distance", flush=True)
    return rows


def save_crop(path: Path, render: np.ndarray, shown: dict[str, np.ndarray]) -> None:
    """photo | render over (the teeth found inside the photo's inner lip line in green: photo, render)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    top = np.concatenate([shown["photo_plain"], render], axis=1)
    bottom = np.concatenate([shown["photo"], shown["render"]], axis=1)
    Image.fromarray(np.round(np.clip(np.concatenate([top, bottom]), 0, 1) * 255).astype(np.uint8)).save(path)


def baseline_parts(head):
    """The head's mouth parts placed as before they were lowered: teeth, gums and tongue TEETH_DROP_M higher (the
    drop is a constant offset on the template, which the fitted head's anchors carry unchanged; nothing else
    changed)."""
    import dataclasses

    from facesmith.inference.mouth import PARTS
    from facesmith.training.ict_mouth import TEETH_DROP_M

    parts = head.rig.mouth
    v = parts.mouth_vertices.copy()
    v[np.isin(parts.mouth_part, [PARTS.index("teeth"), PARTS.index("gums_and_tongue")]), 1] += TEETH_DROP_M
    return dataclasses.replace(parts, mouth_vertices=v)


if __name__ == "__main__":
    main()
