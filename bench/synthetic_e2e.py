"""End to end on rendered heads: real detector output on real pixels.

Renders N random heads of the model in Blender (Cycles CPU, 512², random key light and ambient),
coloured per vertex from a real portrait fitted first (so skin, brows, lips and eyes look like a
face), runs the whole pipeline (load, MediaPipe, fit) on each render, and reports the identity error
(β only, neutral) over the face region after similarity alignment, with the mean face measured in
the same run as the baseline. Each render goes through `Reconstructor.fit` with the default options.
Goals: every render detected (detection rate ≥ 0.9) and the fit's identity error below the mean face's
(fit_median_mm < mean_face_median_mm): the fit must add identity, not just pose.
In-model synthetic: the heads are made with FLAME itself, the fit's own model (no model mismatch, unlike
real faces), though the landmarks come from a real detector on rendered pixels.
Usage: python bench/synthetic_e2e.py --n 10 [--keep DIR] [--samples 32] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import IN_MODEL, SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--source", type=Path, default=SHARED_FACES / "001_03.jpg", help="portrait for the skin")
    parser.add_argument("--keep", type=Path, help="keep the renders here")
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    from facesmith.inference import flame
    from facesmith.inference.errors import FacesmithError
    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.images import load_photo
    from facesmith.inference.pipeline import Reconstructor
    from facesmith.training.metrics import median_error_mm
    from facesmith.training.render import render_head
    from facesmith.training.synthetic import sample_head, vertex_colours

    options = pipeline_options(args.flame)
    model = load_bench_model(args.flame)
    mask = face_region(model)
    rng = np.random.default_rng(args.seed)
    out = args.keep or Path(tempfile.mkdtemp(prefix="facesmith-e2e-"))
    out.mkdir(parents=True, exist_ok=True)
    fit_err, mean_err, missed, render_s, pipe_s = [], [], 0, [], []
    with Reconstructor(options, model) as rec:
        source = rec.fit([args.source])
        photo = load_photo(args.source, options.working_side)
        colours = vertex_colours(photo.rgb, source.photos[0], photo.scale, model.faces)
        for i in range(args.n):
            head = sample_head(model, rng, max_yaw_deg=30.0)
            head["expression"] *= 0.7  # everyday expressions: 0.5 σ overall
            verts = flame.flame_forward(model, head["shape"], head["expression"], head["pose"]).vertices[0]
            light = np.radians([rng.uniform(-40, 20), rng.uniform(-40, 40), 0.0])
            path = out / f"head_{i:03d}.png"
            t = time.perf_counter()
            render_head(verts, model.faces, colours, head["camera"], light, rng.uniform(0.2, 0.6), path, args.samples)
            render_s.append(time.perf_counter() - t)
            np.savez(path.with_suffix(".npz"), shape=head["shape"], expression=head["expression"], pose=head["pose"])
            t = time.perf_counter()
            try:
                result = rec.fit([path])
            except FacesmithError as exc:
                missed += 1
                print(f"{path.name}: {exc}")
                continue
            pipe_s.append(time.perf_counter() - t)
            truth = flame.flame_forward(model, head["shape"]).vertices[0]
            fit_err.append(median_error_mm(result.neutral_vertices, truth, mask))
            mean_err.append(median_error_mm(model.v_template, truth, mask))
            print(f"{path.name}: fit {fit_err[-1]:.2f} mm, mean face {mean_err[-1]:.2f} mm, "
                  f"landmark RMS {result.photos[0].landmark_rms_px:.2f} px")  # fmt: skip
    report = {
        "n": args.n,
        "detected": args.n - missed,
        "detection_rate": round((args.n - missed) / max(args.n, 1), 4),
        "fit_median_mm": round(float(np.median(fit_err)), 3) if fit_err else None,
        "mean_face_median_mm": round(float(np.median(mean_err)), 3) if mean_err else None,
        "ratio": round(float(np.median(fit_err) / np.median(mean_err)), 3) if fit_err else None,
        "render_s_median": round(float(np.median(render_s)), 2),
        "pipeline_s_median": round(float(np.median(pipe_s)), 3) if pipe_s else None,
        "renders": str(out),
    }  # fmt: skip
    goals = [
        Goal("detection_rate", report["detection_rate"], ">=", 0.9),
        Goal("fit_median_mm", report["fit_median_mm"], "<", report["mean_face_median_mm"] or 0.0,
             report["mean_face_median_mm"], "mean face", IN_MODEL, "< baseline"),
    ]  # fmt: skip
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
