"""Photo -> saved .blend/.glb/.fbx on the CPU: time per stage and peak RAM.

Converts N portraits in one process through the real path of `facesmith reconstruct|batch`:
`Reconstructor.run` (load, detect, fit, textures, rig), then `addon.output.write_head` (fresh file,
build, save each format, the preview with --preview) and the NAME.json report. The first photo also pays
start-up (MediaPipe's first use), reported apart; bpy import and model loading are `startup_ms`.
Baseline from the same run: an empty Blender file reset + saved, the fixed cost of any head.
Goals: ≤ 3 s per photo end to end excluding the preview render; peak RAM ≤ 2 GB.
Usage: python bench/pipeline.py [--n 5] [--preview] [--photos DIR] [--no-check]
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
from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))

PER_PHOTO_GOAL_MS = 3000.0
PEAK_RSS_GOAL_MB = 2048.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--preview", action="store_true", help="also time the preview render")
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    t0 = time.perf_counter()
    import threading

    import bpy

    from facesmith.addon.output import reset_file
    from facesmith.cli.heads import Job, WriteOptions, make_head
    from facesmith.cli.outputs import HeadFiles
    from facesmith.inference.files import EXPORT_FORMATS
    from facesmith.inference.pipeline import Reconstructor

    options = pipeline_options(args.flame)
    model = load_bench_model(args.flame)
    photos = sorted(args.photos.glob("*.jpg"))[: args.n]
    write = WriteOptions(EXPORT_FORMATS, args.preview, overwrite=True)
    stages: dict[str, list[float]] = {}
    totals = []
    with Reconstructor(options, model) as rec, tempfile.TemporaryDirectory() as out:
        startup_ms = 1000 * (time.perf_counter() - t0)
        t = time.perf_counter()
        reset_file()
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(out) / "empty.blend"), copy=True)
        baseline_ms = 1000 * (time.perf_counter() - t)
        for path in photos:
            # What `facesmith reconstruct` does per head: fit, textures, Blender files, staging and commit.
            files = HeadFiles(Path(out), path.stem, write.formats, write.preview)
            t = time.perf_counter()
            outcome = make_head(rec, Job(path.stem, (path,)), files, write, threading.Event())
            totals.append(1000 * (time.perf_counter() - t))
            timings = json.loads(files.report.read_text())["timings_ms"]
            for stage, ms in timings.items():
                stages.setdefault(stage, []).append(ms)
            print(f"{path.name}: {outcome.status}, {len(outcome.outputs)} files {totals[-1]:.0f} ms {timings}",
                  file=sys.stderr)  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    warm = totals[1:] or totals
    no_preview = [t - p for t, p in zip(totals, stages.get("preview", [0] * len(totals)), strict=True)]
    no_preview = no_preview[1:] or no_preview
    result = {
        "photos": len(photos),
        "startup_ms": round(startup_ms),
        "first_photo_ms": round(totals[0]),
        "per_photo_ms_median": round(float(np.median(warm))),
        "per_photo_excluding_preview_ms_median": round(float(np.median(no_preview))),
        "stage_ms_median": {k: round(float(np.median(v)), 1) for k, v in stages.items()},
        "baseline_empty_file_save_ms": round(baseline_ms, 1),
        "peak_rss_mb": round(peak_mb),
        "preview": args.preview,
        "formats": list(EXPORT_FORMATS),
    }
    goals = [
        Goal("per_photo_excluding_preview_ms_median", result["per_photo_excluding_preview_ms_median"], "<=",
             PER_PHOTO_GOAL_MS, result["baseline_empty_file_save_ms"], "empty file reset + save"),
        Goal("peak_rss_mb", result["peak_rss_mb"], "<=", PEAK_RSS_GOAL_MB),
    ]  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
