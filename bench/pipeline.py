"""Photo -> saved .blend/.glb/.fbx on the CPU: time per stage and peak RAM.

Converts N portraits in one process. The first photo also pays start-up (bpy import, MediaPipe and
model loading), reported apart. Baseline from the same run: an empty Blender file reset + saved, the
fixed cost of any head. Goals: ≤ 3 s per photo end to end excluding the preview render; peak RAM ≤ 2 GB.
Usage: python bench/pipeline.py [--n 5] [--preview] [--photos DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--preview", action="store_true", help="also time the preview render")
    parser.add_argument("--flame")
    args = parser.parse_args()
    t0 = time.perf_counter()
    import bpy

    from facesmith.addon.output import ConvertOptions, Resources, convert, reset_file
    from facesmith.inference.flame.paths import default_dev_model_path, load_model, resolve_flame_path
    from facesmith.inference.landmarks.detect import LandmarkDetector
    from facesmith.inference.pipeline import default_embedding

    model = load_model(resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path()))
    embedding = default_embedding(model)
    detector = LandmarkDetector()
    resources = Resources(detector, embedding)
    startup_ms = 1000 * (time.perf_counter() - t0)
    options = ConvertOptions(preview=args.preview)
    photos = sorted(args.photos.glob("*.jpg"))[: args.n]
    stages: dict[str, list[float]] = {}
    totals = []
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        reset_file()
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(out) / "empty.blend"), copy=True)
        baseline_ms = 1000 * (time.perf_counter() - t)
        for path in photos:
            t = time.perf_counter()
            outcome = convert([path], Path(out), path.stem, model, options, resources)
            totals.append(1000 * (time.perf_counter() - t))
            report = json.loads((Path(out) / f"{path.stem}.json").read_text())
            for stage, ms in report["timings_ms"].items():
                stages.setdefault(stage, []).append(ms)
            print(f"{path.name}: {outcome.status} {totals[-1]:.0f} ms {report['timings_ms']}", file=sys.stderr)
    detector.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm = totals[1:] or totals
    no_preview = [t - p for t, p in zip(totals, stages.get("preview", [0] * len(totals)), strict=True)][1:] or totals
    print(json.dumps({
        "photos": len(photos),
        "startup_ms": round(startup_ms),
        "first_photo_ms": round(totals[0]),
        "per_photo_ms_median": round(float(np.median(warm))),
        "per_photo_excluding_preview_ms_median": round(float(np.median(no_preview))),
        "stage_ms_median": {k: round(float(np.median(v)), 1) for k, v in stages.items()},
        "baseline_empty_file_save_ms": round(baseline_ms, 1),
        "peak_rss_mb": round(peak_mb),
        "preview": args.preview,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
