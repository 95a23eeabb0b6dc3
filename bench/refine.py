"""Several photos of one person: photo-consistency refinement vs the landmark-only joint fit (issue I).

Heads, renders, scans and scoring are bench/identity.py's (ICT-FaceKit identities, out of FLAME's model, rendered
in Cycles; NoW protocol, median of the pooled scan-to-fit distances; A TEST SET: never tune on it). The same
heads are fitted from 3 photos (0°, ±30°) and 5 photos (0°, ±30°, ±60°), each with the refinement off (the
landmark-only joint fit) and on, through the whole pipeline (`Reconstructor.fit`, dense landmarks); the 0° photo
alone with the refinement "on" must give the same head as with it "off" (one photo has nothing to agree with).
Ratios are to the FLAME mean face; the floor (FLAME fitted to the 3D skin itself) is printed beside them.

Goals (issue I):

| figure                         | goal                                        |
|--------------------------------|---------------------------------------------|
| refined_3photo_ratio           | <= 0.65                                     |
| refined_5photo_ratio           | <= 0.60                                     |
| heads_refined_not_better       | 0 (refined better than landmark-only on every head, 3 and 5 photos) |
| one_photo_max_change_mm        | 0 (refinement leaves one photo alone)       |
| refine_3photo_s                | <= 5 s (3 photos at 512 px, 2 cores, the whole fit)   |

Usage: python bench/refine.py [--n 20] [--seed 0] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Goal, add_check_argument, finish, load_bench_model, pipeline_options  # noqa: E402
from identity import CACHE, YAWS, build_heads, log, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="heads (the first n of bench/identity.py's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    from _identity_geom import NOW_POINTS, Ict, make_scan, now_distances

    from facesmith.inference import flame
    from facesmith.inference.pipeline import Reconstructor

    model = load_bench_model(args.flame)
    ict = Ict()

    def lm7(shape):
        return flame.landmarks68(model, flame.flame_forward(model, shape))[0][NOW_POINTS]

    def score(scan, shape):
        return now_distances(scan, flame.flame_forward(model, shape).vertices[0], model.faces, lm7(shape))

    heads = build_heads(args, model, ict, lm7)
    base = pipeline_options(args.flame, landmarks="dense", fallback=False)
    modes = {m: dataclasses.replace(base, fit=dataclasses.replace(base.fit, refine=m)) for m in ("off", "on")}
    dists = {k: [] for k in ("mean_face", "lm_3", "ref_3", "lm_5", "ref_5")}
    rows, not_better, one_change, times, failed = [], 0, 0.0, [], 0
    with Reconstructor(modes["off"], model) as off, Reconstructor(modes["on"], model) as on:
        for h in heads:
            p = dict(zip(YAWS, h["paths"], strict=True))
            three, five = [p[0], p[30], p[-30]], [p[y] for y in YAWS]
            try:
                t0 = time.perf_counter()
                r3 = on.fit(three)
                times.append(time.perf_counter() - t0)
                l3, l5, r5 = off.fit(three), off.fit(five), on.fit(five)
                one_off, one_on = off.fit([p[0]]), on.fit([p[0]])
            except Exception as exc:  # noqa: BLE001 - a head the detector misses is counted, not fatal
                failed += 1
                log(f"  {h['folder'].name}: {exc}")
                continue
            scan = make_scan(ict, ict.vertices(h["w_id"]))
            d = {"mean_face": score(scan, np.zeros(model.n_shape)), "lm_3": score(scan, l3.shape),
                 "ref_3": score(scan, r3.shape), "lm_5": score(scan, l5.shape), "ref_5": score(scan, r5.shape)}  # fmt: skip
            for k, v in d.items():
                dists[k].append(v)
            med = {k: round(float(np.median(v) * 1e3), 3) for k, v in d.items()}
            change = float(np.abs(one_on.neutral_vertices - one_off.neutral_vertices).max() * 1e3)
            one_change = max(one_change, change)
            worse = int(med["ref_3"] >= med["lm_3"]) + int(med["ref_5"] >= med["lm_5"])
            not_better += worse
            agree = [round(ph.agreement, 3) for ph in r5.photos]
            rows.append({"head": h["folder"].name, "expression": str(h["expression"]), **med,
                         "agreement_5": agree, "refine_warnings": [w for w in r5.warnings if "agree" in w]})  # fmt: skip
            log(f"  {h['folder'].name} {h['expression']}: " + " ".join(f"{k}={v:.3f}" for k, v in med.items())
                + f" 3-photo fit {times[-1]:.2f} s agreement {agree}")  # fmt: skip

    figs = {k: summary(v) if v else None for k, v in dists.items()}
    mean = figs["mean_face"]["median_mm"] if figs["mean_face"] else float("nan")

    def ratio(k):
        return None if figs[k] is None else round(figs[k]["median_mm"] / mean, 4)

    report = {
        "heads": args.n, "heads_scored": len(rows), "failed": failed, "mean_face_median_mm": mean,
        **{f"{k}_median_mm": (figs[k] or {}).get("median_mm") for k in ("lm_3", "ref_3", "lm_5", "ref_5")},
        "landmark_3photo_ratio": ratio("lm_3"), "refined_3photo_ratio": ratio("ref_3"),
        "landmark_5photo_ratio": ratio("lm_5"), "refined_5photo_ratio": ratio("ref_5"),
        "heads_refined_not_better": not_better, "one_photo_max_change_mm": round(one_change, 6),
        "refine_3photo_s_median": round(float(np.median(times)), 3) if times else None,
        "per_head": rows,
    }  # fmt: skip
    goals = [
        Goal("refined_3photo_ratio", ratio("ref_3"), "<=", 0.65, ratio("lm_3"), "landmark-only 3 photos"),
        Goal("refined_5photo_ratio", ratio("ref_5"), "<=", 0.60, ratio("lm_5"), "landmark-only 5 photos"),
        Goal(
            "heads_refined_not_better", float(not_better), "<=", 0.0, None, "", goal="0 of the heads × (3, 5 photos)"
        ),  # fmt: skip
        Goal("one_photo_max_change_mm", round(one_change, 6), "<=", 0.0),
        Goal("refine_3photo_s", report["refine_3photo_s_median"], "<=", 5.0),
    ]
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
