"""Out-of-model identity benchmark, scored as NoW. A TEST SET: never use it for training or tuning defaults.

Heads: identities sampled from ICT-FaceKit (100 light-stage PCA modes, w_id ~ N(0, 1), fixed seeds), not
from FLAME's basis, so a fit cannot win by assuming its own model. Every third head wears an ICT expression
(smile, raised brows, open jaw or a random mix); the ground-truth scan is always the neutral identity.
Rendered photo-like in Blender (Cycles CPU, 512², 24 samples, denoised; bench/_identity_render.py): skin
from the UV albedo the pipeline bakes from a CC BY portrait (one person per head), carried onto the ICT mesh by the
floor fit's correspondence (each ICT vertex -> nearest point of the FLAME surface fitted to that head ->
FLAME UV -> albedo) as vertex colours; sclera/iris, teeth, gums and lashes in flat part colours; lit by one
of Blender's bundled CC0 HDRIs as the world plus a sun; composited over a tone-mapped crop of another
bundled HDRI (the backgrounds are real photographs, low resolution); perspective camera fixed per head,
head turned to yaw 0°, +30°, −30°, +60°, −60° (about FLAME's +y). Rendered once and cached with the
ground truth (ICT weights, seeds, camera, floor fit) under .cache/identity/; a rerun only refits.

Scoring, as NoW: the scan is the ICT head's outer skin (parts face + head_and_neck, no eyeballs, lashes,
teeth, gums, mouth or eye sockets), in metres, cropped to 95 mm around its nose tip (iBUG 30). The 7 points
are iBUG 36, 39, 42, 45 (eye corners), 30 (nose tip), 48, 54 (mouth corners) on both meshes (ICT:
`landmarks_multipie68`; FLAME: `landmarks68` of the neutral head). Similarity from the predicted mesh's 7
points to the scan's, then rigid ICP (no scale), then each scan point's distance to the predicted FLAME
surface, exact point-to-triangle (among the 32 triangles with the nearest centroids). Distances of all
heads are pooled; the figure is their median (NoW's headline), in mm. Methods, in the same run: the FLAME
mean face; the fit from 1 photo (0°); the fit from 3 photos (0°, ±30°); the fit from 1 photo at ±60°
(reported, no goal); and the floor: FLAME fitted directly to the head's 3D skin (similarity + linear β
solve, point-to-plane ICP both ways: FLAME face vertices to the skin and the cropped scan points to FLAME,
prior β ~ N(0, 1) at 1 mm noise; refitted at each run), the best any photo method can do with this model.
Ratios are method / mean face; "frac" is the fraction of the way from the mean face (0) to the floor (1).
Figures are over the heads where both the 1- and 3-photo fits found a face; the backend runs alone (no
fallback to another backend when it finds no face), and misses are counted in "failed".

Real photos without 3D (same run): the London pairs (NNN_03 neutral, NNN_08 smiling, each fitted alone):
mean over the face region of the vertex distance between a person's two neutral heads, averaged over
people (within), over the same for different people's _03 vs _08 (between); and the population mean of β
per component over all those fits.

Goals:

| figure                    | goal                                   |
|---------------------------|----------------------------------------|
| ict_1photo_ratio          | <= 0.80                                |
| ict_3photo_ratio          | <= 0.70                                |
| ict_3photo_vs_best_single | 3 photos <= the best single (0°, ±30°) |
| pairs_within_between      | <= 0.35                                |
| beta_population_max_abs   | <= 0.5                                 |

First measured (50-component development model, 20 heads, seed 0; all four goals missed with both backends):
mean face 1.232 mm, floor 0.651 mm (0.53); MediaPipe 1 photo 1.201 (0.98), 3 photos 1.518 (1.23), pairs
0.49, max |mean β| 2.26 (β1, β5); dlib 1 photo 1.154 (0.94), 3 photos 1.233 (1.00), pairs 0.50, 0.53.
With the dense-landmark network and a perspective camera with fitted focal length (ratios to the mean face):
dense landmarks 1 photo 0.960, 3 photos 0.974, ±60° 0.960, pairs 0.436, max |mean β| 0.197; MediaPipe in the
same code 0.931, 1.047, 1.187, 0.501, 2.31.

Usage: python bench/identity.py [--n 20] [--backend auto|dense|mediapipe|dlib] [--pairs 102] [--dense-mirror on|off]
       [--no-check]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "identity" / "v2"
YAWS = (0, 30, -30, 60, -60)
EXPRESSIONS = {
    "smile": {"mouthSmile_L": 0.6, "mouthSmile_R": 0.6, "cheekSquint_L": 0.3, "cheekSquint_R": 0.3},
    "brows": {"browInnerUp_L": 0.6, "browInnerUp_R": 0.6, "browOuterUp_L": 0.5, "browOuterUp_R": 0.5},
    "jaw": {"jawOpen": 0.3, "mouthLowerDown_L": 0.2, "mouthLowerDown_R": 0.2},
}
PART_COLOURS = {  # linear RGB
    "mouth_socket": (0.12, 0.03, 0.03),
    "gums_and_tongue": (0.35, 0.08, 0.08),
    "teeth": (0.55, 0.5, 0.4),
    "eyelashes": (0.05, 0.035, 0.025),
}
SCLERA, IRISES = (0.55, 0.5, 0.45), ((0.06, 0.03, 0.015), (0.05, 0.08, 0.12), (0.09, 0.07, 0.03))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def portraits() -> list[Path]:
    return sorted(p for p in SHARED_FACES.glob("*_03.jpg") if p.with_name(p.name.replace("_03", "_08")).exists())


def head_expression(ict, i: int, rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
    if i % 3 != 2:
        return None, "neutral"
    kind = ("smile", "brows", "jaw", "mix")[(i // 3) % 4]
    w = np.zeros(len(ict.expression_names))
    if kind == "mix":
        usable = [j for j, ok in enumerate(ict.expression_in_config) if ok and "Look" not in ict.expression_names[j]]
        for j in rng.choice(usable, 3, replace=False):
            w[j] = rng.uniform(0.15, 0.4)
    else:
        for name, value in EXPRESSIONS[kind].items():
            w[ict.expression_names.index(name)] = value
    return w, kind


def vertex_colours(ict, model, verts, floor, albedo, rng) -> np.ndarray:
    """Skin from the FLAME albedo through the floor fit's surface correspondence; other parts flat."""
    import cv2
    from _identity_geom import Surface

    from facesmith.inference.texture.albedo import sample_bilinear
    from facesmith.inference.texture.raster import uv_to_texel

    s, rot, t = floor.to_flame
    keep = ~model.eyeball_triangles()
    surf = Surface(floor.vertices, model.faces[keep])
    _, _, tri, bary = surf.closest(s * verts @ rot.T + t)
    uvf = model.uv_faces[keep][tri]  # (N, 3)
    uv = np.einsum("nk,nkd->nd", bary, model.uv_coords[uvf])
    # The baked albedo has isolated dark texels (JPEG grain, unfilled texels): a 5-texel median, then a light blur.
    albedo = cv2.GaussianBlur(cv2.medianBlur(albedo.astype(np.float32), 5), (0, 0), 1.0)
    colours = sample_bilinear(albedo, uv_to_texel(uv, albedo.shape[0]).astype(np.float32))
    part = ict.vertex_part()
    names = ict.part_names
    skin = np.isin(part, [names.index("face"), names.index("head_and_neck")])
    median = np.median(colours[skin], axis=0)
    for name in ("eye_socket_left", "eye_socket_right"):
        colours[part == names.index(name)] = 0.85 * median
    for i, name in enumerate(names):
        for prefix, c in PART_COLOURS.items():
            if name.startswith(prefix):
                colours[part == i] = c
    iris = IRISES[int(rng.integers(len(IRISES)))]
    for side in ("left", "right"):
        # ICT's iris sits under a clear cornea in the sclera shell: paint iris and pupil on the shell's front.
        ball = part == names.index(f"eyeball_{side}")
        a, b = ict.subpart_vertex_ranges[ict.subpart_names.index(f"sclera_{side}")]
        centre = verts[ball].mean(0)
        ahead = np.zeros(len(verts), bool)
        ahead[a:b] = True
        d = verts - centre
        cos = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        colours[ball] = SCLERA
        colours[ball & ahead & (cos > np.cos(np.radians(30)))] = iris
        colours[ball & ahead & (cos > np.cos(np.radians(13)))] = (0.01, 0.01, 0.01)
    return np.clip(colours, 0, 1)


def add_head_arguments(parser: argparse.ArgumentParser, n: int, n_help: str) -> None:
    """The options build_heads reads: how many heads and which draw, how they are rendered, where they are kept
    (bench/identity.py, bench/refine.py and bench/pins.py score the same heads)."""
    parser.add_argument("--n", type=int, default=n, help=n_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cache", type=Path, default=CACHE, help="the heads' renders and their truth")
    parser.add_argument("--flame")


def build_heads(args, model, ict, lm7) -> list[dict]:
    """Sample, floor-fit and render each head once (cached)."""
    from _identity_geom import fit_floor, make_scan

    from facesmith.inference.camera import Camera
    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.pipeline import Reconstructor

    mask = face_region(model)
    people = portraits()
    heads, skin_rec = [], None
    for i in range(args.n):
        folder = args.cache / f"head_{args.seed:02d}_{i:03d}"
        meta_path = folder / "truth.npz"
        paths = [folder / f"yaw{y:+03d}.png" for y in YAWS]
        if meta_path.exists() and all(p.exists() for p in paths):
            meta = dict(np.load(meta_path, allow_pickle=False))
            heads.append({"folder": folder, "paths": paths, **meta})
            continue
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rng = np.random.default_rng([args.seed, i])
        w_id = rng.normal(size=100)
        w_ex, kind = head_expression(ict, i, rng)
        neutral = ict.vertices(w_id)
        floor = fit_floor(model, lm7, make_scan(ict, neutral), mask)
        posed = ict.vertices(w_id, w_ex)
        person = people[i % len(people)]
        if skin_rec is None:
            skin_rec = Reconstructor(pipeline_options(args.flame, landmarks="mediapipe"), model)
        albedo = skin_rec.run([person]).textures.albedo
        colours = vertex_colours(ict, model, posed, floor, albedo, rng)
        lm = neutral[ict.landmarks68]
        pivot = np.array([0.0, lm[27, 1], lm[30, 2] - 0.10])
        centre = 0.5 * (lm[27] + lm[57])
        dist = rng.uniform(0.5, 1.0)
        scale = rng.uniform(1300, 1700)  # px per metre at the face
        jitter = rng.normal(0, 0.008, 2)
        cam = Camera("perspective", np.array([-centre[0] + jitter[0], -centre[1] + jitter[1], centre[2] + dist]),
                     scale * dist, (args.size / 2, args.size / 2))  # fmt: skip
        from _identity_render import render_views

        info = render_views(posed, ict.render_triangles, colours, pivot, cam, YAWS, paths, rng, args.samples, args.size)
        meta = {
            "seed": np.array([args.seed, i]), "w_id": w_id, "w_ex": w_ex if w_ex is not None else np.zeros(0),
            "expression": np.array(kind), "portrait": np.array(person.name), "yaws": np.array(YAWS),
            "camera": np.r_[cam.params, cam.focal, cam.centre], "pivot": pivot, "floor_shape": floor.shape,
            "floor_scale": np.array(floor.to_flame[0]), "floor_rot": floor.to_flame[1], "floor_t": floor.to_flame[2],
            "light_hdri": np.array(info["light_hdri"]), "backgrounds": np.array(info["backgrounds"]),
            "render_s": np.array(time.perf_counter() - t0),
        }  # fmt: skip
        np.savez(meta_path, **meta)
        log(f"{folder.name}: rendered {kind}, skin {person.name}, {time.perf_counter() - t0:.1f} s")
        heads.append({"folder": folder, "paths": paths, **meta})
    if skin_rec is not None:
        skin_rec.close()
    return heads


def contact_sheet(heads: list[dict], path: Path, rows: int = 6, side: int = 160) -> None:
    import cv2

    tiles = []
    for h in heads[:rows]:
        tiles.append(np.concatenate([cv2.resize(cv2.imread(str(p)), (side, side)) for p in h["paths"]], axis=1))
    if tiles:
        cv2.imwrite(str(path), np.concatenate(tiles, axis=0))


def summary(dists: list[np.ndarray]) -> dict:
    pooled = np.concatenate(dists) * 1000
    return {"median_mm": round(float(np.median(pooled)), 4), "mean_mm": round(float(pooled.mean()), 4),
            "std_mm": round(float(pooled.std()), 4), "heads": len(dists)}  # fmt: skip


def score_ict(args, model, ict, lm7, heads) -> dict:
    from _identity_geom import fit_floor, make_scan, shape_distances

    from facesmith.inference.errors import FacesmithError
    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.pipeline import Reconstructor

    options = pipeline_options(args.flame, landmarks=args.backend, fallback=False)
    mask = face_region(model)
    methods = ("mean_face", "floor", "fit_1photo", "fit_3photo", "fit_1photo_p30", "fit_1photo_m30", "fit_1photo_60")
    dists = {m: [] for m in methods}
    per_head, failed, fit_s = [], {"1photo": 0, "3photo": 0, "30": 0, "60": 0}, []

    score = partial(shape_distances, model)

    def try_fit(rec, paths, key):
        t = time.perf_counter()
        try:
            r = rec.fit(paths)
        except FacesmithError as exc:
            failed[key] += 1
            log(f"  {key}: {exc}")
            return None
        fit_s.append((time.perf_counter() - t) / len(paths))
        return r

    with Reconstructor(options, model) as rec:
        for h in heads:
            scan = make_scan(ict, ict.vertices(h["w_id"]))
            p = dict(zip(YAWS, h["paths"], strict=True))
            r1 = try_fit(rec, [p[0]], "1photo")
            r3 = try_fit(rec, [p[0], p[30], p[-30]], "3photo")
            row = {"head": h["folder"].name, "expression": str(h["expression"])}
            floor = fit_floor(model, lm7, scan, mask).shape  # refitted (the cached one only placed the skin)
            d_mean, d_floor = score(scan, np.zeros(model.n_shape)), score(scan, floor)
            row.update(mean_face=float(np.median(d_mean) * 1e3), floor=float(np.median(d_floor) * 1e3))
            if r1 is not None and r3 is not None:
                d1, d3 = score(scan, r1.shape), score(scan, r3.shape)
                dists["mean_face"].append(d_mean)
                dists["floor"].append(d_floor)
                dists["fit_1photo"].append(d1)
                dists["fit_3photo"].append(d3)
                row.update(fit_1photo=float(np.median(d1) * 1e3), fit_3photo=float(np.median(d3) * 1e3))
            for y, key in ((30, "fit_1photo_p30"), (-30, "fit_1photo_m30")):
                r30 = try_fit(rec, [p[y]], "30")
                if r30 is not None and r1 is not None and r3 is not None:
                    dists[key].append(score(scan, r30.shape))
                    row[key] = float(np.median(dists[key][-1]) * 1e3)
            for y in (60, -60):
                r60 = try_fit(rec, [p[y]], "60")
                if r60 is not None:
                    dists["fit_1photo_60"].append(score(scan, r60.shape))
            per_head.append(row)
            log("  " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    out = {m: summary(d) if d else None for m, d in dists.items()}
    out["failed"] = failed
    out["fit_s_per_photo_median"] = round(float(np.median(fit_s)), 3) if fit_s else None
    out["per_head"] = per_head
    return out


def score_pairs(args, model) -> dict:
    from facesmith.inference.errors import FacesmithError
    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.pipeline import Reconstructor

    mask = face_region(model)
    people = portraits()[: args.pairs]
    heads, betas, failed = {}, [], 0
    with Reconstructor(pipeline_options(args.flame, landmarks=args.backend, fallback=False), model) as rec:
        for p03 in people:
            pair = []
            for p in (p03, p03.with_name(p03.name.replace("_03", "_08"))):
                try:
                    r = rec.fit([p])
                except FacesmithError as exc:
                    failed += 1
                    log(f"  {p.name}: {exc}")
                    continue
                pair.append(r.neutral_vertices[mask])
                betas.append(r.shape)
            if len(pair) == 2:
                heads[p03.name] = pair
    names = list(heads)
    a = np.stack([heads[n][0] for n in names])
    b = np.stack([heads[n][1] for n in names])
    within = float(np.mean(np.linalg.norm(a - b, axis=2)))
    between = float(np.mean([np.linalg.norm(a[i] - b[j], axis=1).mean()
                             for i in range(len(names)) for j in range(len(names)) if i != j]))  # fmt: skip
    mean_beta = np.mean(betas, axis=0)
    order = np.argsort(-np.abs(mean_beta))[:5]
    return {
        "pairs": len(names), "fits_failed": failed,
        "pairs_within_mm": round(within * 1000, 3), "pairs_between_mm": round(between * 1000, 3),
        "pairs_within_between": round(within / between, 4),
        "beta_population_max_abs": round(float(np.abs(mean_beta).max()), 4),
        "beta_population_top": {f"beta{int(k)}": round(float(mean_beta[k]), 3) for k in order},
        "beta_population_fits": len(betas),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_head_arguments(parser, 20, "heads (at least 20 for the figures of record)")
    parser.add_argument("--backend", default="auto", help="landmark backend for the fits scored (auto: dense)")
    parser.add_argument("--pairs", type=int, default=1000, help="London pairs to fit (all by default)")
    parser.add_argument("--dense-mirror", choices=("on", "off"), default="on",
                        help="the dense network's test-time mirroring (on: the default of inference)")  # fmt: skip
    add_check_argument(parser)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from facesmith.inference.landmarks import dense

    dense.TEST_TIME_MIRROR = args.dense_mirror == "on"  # read when the pipeline builds its DenseLandmarker
    from _identity_geom import Ict, flame_lm7

    model = load_bench_model(args.flame)
    ict = Ict()
    lm7 = partial(flame_lm7, model)

    t0 = time.perf_counter()
    heads = build_heads(args, model, ict, lm7)
    t_render = time.perf_counter() - t0
    contact_sheet(heads, args.cache / f"contact_{args.seed:02d}.png")
    t0 = time.perf_counter()
    ict_scores = score_ict(args, model, ict, lm7, heads)
    t_ict = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = score_pairs(args, model) if args.pairs > 0 else {}
    t_pairs = time.perf_counter() - t0

    mean = ict_scores["mean_face"]["median_mm"] if ict_scores["mean_face"] else float("nan")
    floor = ict_scores["floor"]["median_mm"] if ict_scores["floor"] else float("nan")

    def fig(method, what="median_mm"):
        s = ict_scores.get(method)
        return s[what] if s else None

    def ratio(method):
        v = fig(method)
        return None if v is None else round(v / mean, 4)

    def frac(method):
        v = fig(method)
        return None if v is None else round((mean - v) / (mean - floor), 4)

    report = {
        "backend": args.backend, "dense_mirror": args.dense_mirror, "heads": args.n, "heads_scored": ict_scores["mean_face"]["heads"]
        if ict_scores["mean_face"] else 0, "failed": ict_scores["failed"],
        "mean_face_median_mm": mean, "floor_median_mm": floor, "floor_ratio": round(floor / mean, 4),
        "ict_1photo_median_mm": fig("fit_1photo"), "ict_3photo_median_mm": fig("fit_3photo"),
        "ict_1photo_60_median_mm": fig("fit_1photo_60"),
        "ict_1photo_ratio": ratio("fit_1photo"), "ict_3photo_ratio": ratio("fit_3photo"),
        "ict_1photo_60_ratio": ratio("fit_1photo_60"),
        "ict_1photo_p30_ratio": ratio("fit_1photo_p30"), "ict_1photo_m30_ratio": ratio("fit_1photo_m30"),
        "ict_1photo_frac": frac("fit_1photo"), "ict_3photo_frac": frac("fit_3photo"),
        "ict_1photo_60_frac": frac("fit_1photo_60"),
        "mean_mm": {m: fig(m, "mean_mm") for m in ("mean_face", "floor", "fit_1photo", "fit_3photo", "fit_1photo_p30",
                                                   "fit_1photo_m30", "fit_1photo_60")},
        "fit_s_per_photo_median": ict_scores["fit_s_per_photo_median"],
        **pairs,
        "render_or_load_s": round(t_render, 1), "ict_fit_score_s": round(t_ict, 1), "pairs_s": round(t_pairs, 1),
        "cache": str(args.cache),
    }  # fmt: skip
    (args.cache / f"per_head_{args.backend}_mirror-{args.dense_mirror}_{args.seed:02d}.json").write_text(
        json.dumps(ict_scores["per_head"])
    )
    r1, r3 = report["ict_1photo_ratio"], report["ict_3photo_ratio"]
    singles = [r for r in (r1, report["ict_1photo_p30_ratio"], report["ict_1photo_m30_ratio"]) if r is not None]
    best = min(singles) if singles else 0.0
    goals = [
        Goal("ict_1photo_ratio", r1, "<=", 0.80, 1.0, "mean face"),
        Goal("ict_3photo_ratio", r3, "<=", 0.70, 1.0, "mean face"),
        Goal(
            "ict_3photo_vs_best_single",
            r3,
            "<=",
            best,
            best,
            "best single photo (0°, ±30°)",
            goal="<= the best 1-photo ratio",
        ),
        Goal("pairs_within_between", pairs.get("pairs_within_between"), "<=", 0.35),
        Goal("beta_population_max_abs", pairs.get("beta_population_max_abs"), "<=", 0.5),
    ]
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
