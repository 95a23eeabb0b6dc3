"""Batch throughput: the plain sequential `facesmith batch` against `--engine ray` with 1 and 2 local workers,
in the same run, on the same photos (each run from scratch, as a user starts it: Python, Blender and the
models load inside the measured time).

Figures: photos per minute of each run; the Ray workers' start-up (from the command's start to its first
finished head, minus the sequential per-photo cost); their peak memory (RSS of each worker process);
the steady per-photo cost of one worker; and a PROJECTION (not a measurement) of a 100-node cluster of
such 2-core machines with 2 workers each, from that per-photo cost.
Goal: with 2 workers on these 2 cores, Ray's steady rate (after its first head: what thousands of photos
see) is at least 1.3× the sequential batch's steady rate, and a worker stays under 2 GB. The end-to-end
rates, start-up included, are reported beside it (with few photos start-up dominates).
Usage: python bench/ray_batch.py [--n 8] [--photos DIR] [--flame PATH] [--no-check]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import SHARED_FACES, Goal, add_check_argument, finish

NODES, WORKERS_PER_NODE = 100, 2
COMMON = ["--no-preview", "--texture-size", "1024"]


def worker_rss_mb() -> list[float]:
    """Resident memory of each Ray HeadWorker process now."""
    res = subprocess.run(["pgrep", "-f", "ray::HeadWorker"], capture_output=True, text=True)
    sizes = []
    for pid in res.stdout.split():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        sizes += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")]
    return sizes


def timed_batch(photos: Path, out: Path, extra: list[str], flame: str | None) -> dict:
    """Run one batch; its wall time, the time to its first finished head, and the workers' peak memory."""
    cmd = [sys.executable, "-m", "facesmith.cli", "batch", str(photos), str(out), *COMMON, *extra]
    cmd += ["--flame", flame] if flame else []
    peak: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            peak.append(max(worker_rss_mb(), default=0.0))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler.start()
    first = None
    for line in proc.stderr:  # progress lines: "[###   ] 1/8 name: ok ..."
        if first is None and "] 1/" in line:
            first = time.perf_counter() - start
    proc.wait()
    wall = time.perf_counter() - start
    stop.set()
    report = json.loads((out / "batch_report.json").read_text())
    if proc.returncode != 0 or report["ok"] != report["photos"]:
        raise SystemExit(f"{' '.join(extra) or 'sequential'} batch failed: {report}")
    first = first or wall
    steady = 60 * (report["photos"] - 1) / max(wall - first, 1e-6)  # after the first head
    return {"wall_s": round(wall, 2), "first_head_s": round(first, 2), "photos": report["photos"],
            "photos_per_min": round(60 * report["photos"] / wall, 1), "steady_photos_per_min": round(steady, 1),
            "worker_peak_mb": round(max(peak, default=0))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--photos", type=Path, default=SHARED_FACES)
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "in"
        photos.mkdir()
        for path in sorted(args.photos.glob("*_03.jpg"))[: args.n]:
            (photos / path.name).symlink_to(path.resolve())
        runs = {
            "sequential": timed_batch(photos, Path(tmp) / "seq", [], args.flame),
            "ray_1": timed_batch(photos, Path(tmp) / "ray1", ["--engine", "ray", "--workers", "1"], args.flame),
            "ray_2": timed_batch(photos, Path(tmp) / "ray2", ["--engine", "ray", "--workers", "2"], args.flame),
        }
    seq = runs["sequential"]
    per_photo_s = (seq["wall_s"] - seq["first_head_s"]) / max(seq["photos"] - 1, 1)  # steady cost, one process
    ray1 = runs["ray_1"]
    ray1_per_photo_s = (ray1["wall_s"] - ray1["first_head_s"]) / max(ray1["photos"] - 1, 1)
    result = {
        "runs": runs,
        "sequential_per_photo_s": round(per_photo_s, 2),
        "ray_worker_per_photo_s": round(ray1_per_photo_s, 2),
        "ray_worker_startup_s": round(ray1["first_head_s"] - ray1_per_photo_s, 2),
        "projection_100_nodes_photos_per_min": round(NODES * WORKERS_PER_NODE * 60 / ray1_per_photo_s),
        "projection_note": f"a projection: {NODES} nodes × {WORKERS_PER_NODE} workers at the measured per-photo cost "
        "of one worker, no scheduling or I/O limits",
    }
    goals = [
        Goal("ray_2_steady_photos_per_min", runs["ray_2"]["steady_photos_per_min"], ">=",
             1.3 * seq["steady_photos_per_min"], seq["steady_photos_per_min"], "sequential batch",
             goal=">= 1.3 x sequential"),
        Goal("ray_worker_peak_mb", max(runs["ray_1"]["worker_peak_mb"], runs["ray_2"]["worker_peak_mb"]), "<=", 2048),
    ]  # fmt: skip
    finish(result, goals, not args.no_check)


if __name__ == "__main__":
    main()
