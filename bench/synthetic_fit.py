"""FLAME fitting on synthetic landmarks: random heads from the prior, projected with realistic noise.

For each of N heads: sample β, ψ, pose and a camera, project the points MediaPipe would give
(the 105 embedded points, 17 contour points, iris centres) into a 512² image, add ~1.5 px noise and a
few outliers, fit, and measure the identity error (β only, neutral) over the face region after
similarity alignment, NoW-style. The mean face (β = 0) is measured in the same run as the baseline.
Usage: python bench/synthetic_fit.py --n 50 [--json] [--camera orthographic|perspective] [--flame PATH] [--no-check]
Goal: fit_median_mm ≤ 0.5 × mean_face_median_mm; ≤ 30 ms per fit on this machine's CPU.
In-model synthetic: the landmarks are made with FLAME itself, the fit's own model (an upper bound on what
real photos give; bench/synthetic_e2e.py puts a real detector in between).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from _common import IN_MODEL, Goal, add_check_argument, finish, load_bench_model, pipeline_options

from facesmith.inference import flame
from facesmith.inference.fit import fit_flame
from facesmith.inference.flame.paths import DENSE_EMBEDDING
from facesmith.inference.flame.regions import face_region
from facesmith.inference.landmarks.embedding import load_embedding
from facesmith.training.metrics import median_error_mm
from facesmith.training.synthetic import observe, sample_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.5, help="landmark noise, px")
    parser.add_argument("--outliers", type=int, default=3)
    parser.add_argument("--camera", default="orthographic")
    parser.add_argument("--flame")
    parser.add_argument("--embedding", default=str(DENSE_EMBEDDING), help="learned MediaPipe embedding ('' for none)")
    parser.add_argument("--json", action="store_true", help="print only the goals and the JSON line")
    add_check_argument(parser)
    args = parser.parse_args()
    model = load_bench_model(args.flame)
    defaults = pipeline_options(args.flame).fit
    options = dataclasses.replace(defaults, camera=args.camera)
    embedding = load_embedding(args.embedding, model) if args.embedding else None
    mask = face_region(model)
    rng = np.random.default_rng(args.seed)
    fit_err, mean_err, times, rms = [], [], [], []
    mean_face = model.v_template
    for i in range(args.n):
        head = sample_head(model, rng)
        obs = observe(model, head, rng, args.noise, args.outliers, embedding=embedding)
        start = time.perf_counter()
        sol = fit_flame(model, [obs], options, embedding=embedding)
        times.append(time.perf_counter() - start)
        truth = flame.flame_forward(model, head["shape"]).vertices[0]
        fitted = flame.flame_forward(model, sol.shape).vertices[0]
        fit_err.append(median_error_mm(fitted, truth, mask))
        mean_err.append(median_error_mm(mean_face, truth, mask))
        rms.append(float(np.sqrt(np.mean(sol.residuals_px[0] ** 2))))
        if not args.json:
            print(
                f"{i:3d} fit {fit_err[-1]:5.2f} mm  mean face {mean_err[-1]:5.2f} mm  rms {rms[-1]:5.2f} px  {1000 * times[-1]:6.1f} ms"
            )
    result = {
        "n": args.n,
        "fit_median_mm": round(float(np.median(fit_err)), 3),
        "mean_face_median_mm": round(float(np.median(mean_err)), 3),
        "ratio": round(float(np.median(fit_err) / np.median(mean_err)), 3),
        "ms_per_fit": round(1000 * float(np.median(times)), 2),
        "landmark_rms_px": round(float(np.median(rms)), 3),
        "noise_px": args.noise,
        "outliers": args.outliers,
        "camera": args.camera,
        "model": model.description,
        "landmarks": int(len(sol.residuals_px[0])),
    }
    mean_face = result["mean_face_median_mm"]
    goals = [
        Goal("fit_median_mm", result["fit_median_mm"], "<=", 0.5 * mean_face, mean_face, "mean face",
             IN_MODEL, "<= 0.5 x mean face"),
        Goal("ms_per_fit", result["ms_per_fit"], "<=", 30.0),
    ]  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
