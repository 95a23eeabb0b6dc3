"""Detection + FLAME fit over the portraits in ../shared/data/faces (or --photos DIR).

Reports the detection rate, the landmark RMS of the fit in pixels and normalised by the inter-ocular
distance (outer eye corners), and ms per stage. Each photo goes through the pipeline's own steps
(`detect_photos`, `fit_person` with the pipeline's options and embedding, as `Reconstructor.fit`).
Baseline from the same run: the mean face fitted rigidly (pose and camera only), i.e. what the
shape/expression fit adds.
Goals: detection rate ≥ 0.95 (every portrait holds one face); landmark RMS median ≤ 0.05 IOD and p90
≤ 0.08 IOD; fit ≤ 30 ms median (bench/synthetic_fit.py's goal for the same fitter).
Self-consistency: the landmark RMS is scored against the very landmarks the fit was fitted to, not
against independent truth; a low figure means the model can explain the detector, not that the head is
right (bench/synthetic_e2e.py scores geometry against known heads).
Usage: python bench/photos.py [--photos DIR] [--limit N] [--landmarks mediapipe|dlib] [--overlays DIR] [--no-check]
Prints one line per photo with -v, then a JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from _common import SELF_CONSISTENCY, SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

from facesmith.inference.errors import FacesmithError
from facesmith.inference.fit import fit_flame, fit_person
from facesmith.inference.pipeline import Reconstructor, assemble, detect_photos
from facesmith.training.overlay import save_overlay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--landmarks", default="mediapipe")
    parser.add_argument("--overlays", type=Path, help="write overlay PNGs of the first 6 photos here")
    parser.add_argument("--no-embedding", action="store_true", help="FLAME's 105 MediaPipe points only")
    parser.add_argument("--flame")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_check_argument(parser)
    args = parser.parse_args()
    options = pipeline_options(args.flame, landmarks=args.landmarks, fallback=False)
    model = load_bench_model(args.flame)
    rigid = dataclasses.replace(options.fit, iterations=0, fit_gaze=False)
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    paths = paths[: args.limit] if args.limit else paths
    t: dict[str, list[float]] = {"load": [], "detect": [], "fit": []}
    rms_px, rms_iod, rigid_iod, failed, used = [], [], [], [], 0
    with Reconstructor(options, model) as rec:
        embedding = None if args.no_embedding else rec.embedding
        for i, path in enumerate(paths):
            try:
                found = detect_photos([path], rec.detector, options)
            except FacesmithError as exc:
                failed.append(str(exc))
                continue
            obs = found.observations[0]
            t0 = time.perf_counter()
            sol, confidences = fit_person(model, [obs], options.fit, embedding)
            t["fit"].append(time.perf_counter() - t0)
            t["load"].append(found.timings_ms["load"] / 1000)
            t["detect"].append(found.timings_ms["detect"] / 1000)
            base = fit_flame(model, [obs], rigid, embedding=embedding)
            ibug = obs.ibug68()
            iod = float(np.linalg.norm(ibug[36] - ibug[45]))
            rms = float(np.sqrt(np.mean(sol.residuals_px[0] ** 2)))
            rms_px.append(rms), rms_iod.append(rms / iod)
            rigid_iod.append(float(np.sqrt(np.mean(base.residuals_px[0] ** 2))) / iod)
            used = len(sol.residuals_px[0])
            if args.verbose:
                print(
                    f"{path.name}: rms {rms:.2f} px ({100 * rms / iod:.2f} % IOD), rigid mean face {100 * rigid_iod[-1]:.2f} %"
                )
            if args.overlays and i < 6:
                result = assemble(model, sol, found, confidences)
                save_overlay(model, result.photos[0], args.overlays / f"{path.stem}_overlay.png")
    ms = {k: round(1000 * float(np.median(v)), 2) for k, v in t.items() if v}

    def stat(values: list[float], fn, digits: int) -> float | None:
        return round(float(fn(values)), digits) if values else None

    detection_rate = round((len(paths) - len(failed)) / max(len(paths), 1), 4)
    result = {
        "photos": len(paths),
        "detected": len(paths) - len(failed),
        "detection_rate": detection_rate,
        "landmark_rms_px_median": stat(rms_px, np.median, 3),
        "landmark_rms_iod_median": stat(rms_iod, np.median, 5),
        "landmark_rms_iod_p90": stat(rms_iod, lambda v: np.percentile(v, 90), 5),
        "baseline_rigid_mean_face_rms_iod_median": stat(rigid_iod, np.median, 5),
        "baseline_rigid_mean_face_rms_iod_p90": stat(rigid_iod, lambda v: np.percentile(v, 90), 5),
        "ms_median": ms,
        "backend": args.landmarks,
        "embedding": not args.no_embedding and rec.embedding is not None,
        "landmarks_used": used,
        "failed": failed,
    }
    rigid_label = "rigid mean face"
    goals = [
        Goal("detection_rate", detection_rate, ">=", 0.95),
        Goal("landmark_rms_iod_median", result["landmark_rms_iod_median"], "<=", 0.05,
             result["baseline_rigid_mean_face_rms_iod_median"], rigid_label, SELF_CONSISTENCY),
        Goal("landmark_rms_iod_p90", result["landmark_rms_iod_p90"], "<=", 0.08,
             result["baseline_rigid_mean_face_rms_iod_p90"], rigid_label, SELF_CONSISTENCY),
        Goal("fit_ms_median", ms.get("fit"), "<=", 30.0),
    ]  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
