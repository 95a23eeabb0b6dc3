"""Detection + FLAME fit over the portraits in ../shared/data/faces (or --photos DIR).

Reports the detection rate, the landmark RMS of the fit in pixels and normalised by the inter-ocular
distance (outer eye corners), and ms per stage. Baseline from the same run: the mean face fitted
rigidly (pose and camera only), i.e. what the shape/expression fit adds.
Usage: python bench/photos.py [--photos DIR] [--limit N] [--landmarks mediapipe|dlib] [--overlays DIR]
Prints one line per photo with -v, then a JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from facesmith.inference.errors import FacesmithError
from facesmith.inference.fit import FitOptions, Observation, fit_flame
from facesmith.inference.flame.paths import default_dev_model_path, load_model, resolve_flame_path
from facesmith.inference.images import load_photo
from facesmith.inference.landmarks.detect import LandmarkDetector
from facesmith.inference.pipeline import assemble, default_embedding
from facesmith.training.overlay import save_overlay

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--landmarks", default="mediapipe")
    parser.add_argument("--overlays", type=Path, help="write overlay PNGs of the first 6 photos here")
    parser.add_argument("--no-embedding", action="store_true", help="FLAME's 105 MediaPipe points only")
    parser.add_argument("--flame")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    model = load_model(resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path()))
    embedding = None if args.no_embedding else default_embedding(model)
    options = FitOptions()
    rigid = dataclasses.replace(options, iterations=0, fit_gaze=False)
    paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    paths = paths[: args.limit] if args.limit else paths
    t = {"load": [], "detect": [], "fit": []}
    rms_px, rms_iod, rigid_iod, failed = [], [], [], []
    with LandmarkDetector(args.landmarks, fallback=None) as detector:
        for i, path in enumerate(paths):
            try:
                t0 = time.perf_counter()
                photo = load_photo(path)
                t1 = time.perf_counter()
                det = detector.detect(photo)
                t2 = time.perf_counter()
            except FacesmithError as exc:
                failed.append(str(exc))
                continue
            obs = Observation.from_face(det.face, photo.to_original, photo.original_size)
            sol = fit_flame(model, [obs], options, embedding=embedding)
            t3 = time.perf_counter()
            base = fit_flame(model, [obs], rigid, embedding=embedding)
            t["load"].append(t1 - t0), t["detect"].append(t2 - t1), t["fit"].append(t3 - t2)
            ibug = obs.ibug68()
            iod = float(np.linalg.norm(ibug[36] - ibug[45]))
            rms = float(np.sqrt(np.mean(sol.residuals_px[0] ** 2)))
            rms_px.append(rms), rms_iod.append(rms / iod)
            rigid_iod.append(float(np.sqrt(np.mean(base.residuals_px[0] ** 2))) / iod)
            if args.verbose:
                print(
                    f"{path.name}: rms {rms:.2f} px ({100 * rms / iod:.2f} % IOD), rigid mean face {100 * rigid_iod[-1]:.2f} %"
                )
            if args.overlays and i < 6:
                result = assemble(model, sol, [obs], [det], [str(path)], [1.0])
                save_overlay(model, result.photos[0], args.overlays / f"{path.stem}_overlay.png")
    ms = {k: round(1000 * float(np.median(v)), 2) for k, v in t.items() if v}
    print(json.dumps({
        "photos": len(paths),
        "detected": len(paths) - len(failed),
        "detection_rate": round((len(paths) - len(failed)) / max(len(paths), 1), 4),
        "landmark_rms_px_median": round(float(np.median(rms_px)), 3),
        "landmark_rms_iod_median": round(float(np.median(rms_iod)), 5),
        "landmark_rms_iod_p90": round(float(np.percentile(rms_iod, 90)), 5),
        "baseline_rigid_mean_face_rms_iod_median": round(float(np.median(rigid_iod)), 5),
        "ms_median": ms,
        "backend": args.landmarks,
        "landmarks_used": int(len(sol.residuals_px[0])),
        "failed": failed,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
