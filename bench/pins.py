"""Pins: the artist's corrections (inference/pins.py), played on bench/identity.py's ICT renders. Its heads, so A TEST
SET: never tune defaults on it.

The artist: after the automatic fit (`Reconstructor.fit_detected`, dense landmarks, as identity.py's), pins go where
the head is most wrong in the photo, by a fixed rule that never looks at the scores. Candidates: the dense network's
FLAME vertices (the points it predicts) in FLAME's face region (`flame.regions.face_region`: an artist pins the face,
and the fit has no neck pose to follow a pin on the neck) that have a true counterpart on the ICT skin (floor-fit gap
under 5 mm) facing the camera. A candidate's image error: the distance between the fitted head's projection of the vertex and its true
position (`_identity_geom.true_image_points`: the floor fit's correspondence, the render's camera and yaw, as
bench/refine.py's oracle). Pins are taken by largest error, each at least MIN_SEPARATION × the face size from the
ones taken (an artist spreads pins), and put at the vertex's true position. The fit is re-solved from the automatic
head with the pins (`PinSession`: shape shared, expression, pose and camera per photo) and scored by identity.py's
NoW metric (pooled median of the scan-to-fit distances, mm) as a ratio to FLAME's mean face.

Latency (wall clock, the landmark problem built once per head, as in a Blender session; a Python process sharing 2
CPU cores with whatever else runs, so the report also gives the CPU time and the load average): the first re-solve with the pins, from the automatic head; and a drag: one pin
moved 3 px, re-solved from the pinned head (what the head follows while the artist drags). The goals are the drag's.

Goals:

| figure                   | goal          |
|--------------------------|---------------|
| pins_1photo_5_ratio      | <= 0.80       |
| pins_1photo_15_ratio     | <= 0.70       |
| pins_3photo_5each_ratio  | <= 0.65       |
| drag_ms_1photo_median    | <= 50         |
| drag_ms_3photo_median    | <= 150        |

Usage: python bench/pins.py [--n 10] [--seed 0] [--cache DIR] [--flame PATH] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Goal, add_check_argument, finish, load_bench_model, pipeline_options  # noqa: E402
from identity import YAWS, add_head_arguments, build_heads, log, summary  # noqa: E402

MAX_GAP_M = 0.005  # a FLAME vertex farther than this from the ICT skin has no true position (as bench/refine.py)
MIN_SEPARATION = 0.05  # of the face size: pins at least this far apart in the photo (about 12 px on a 250 px face)
DRAG_PX = 3.0  # how far the drag moves one pin


def choose_pins(error: np.ndarray, uv: np.ndarray, usable: np.ndarray, k: int, min_px: float) -> np.ndarray:
    """Indices of up to `k` usable candidates, largest `error` first, each at least `min_px` from those taken."""
    taken: list[int] = []
    for i in np.argsort(-np.where(usable, error, -np.inf)):
        if not usable[i] or len(taken) == k:
            break
        if all(np.linalg.norm(uv[i] - uv[j]) >= min_px for j in taken):
            taken.append(int(i))
    return np.array(taken, int)


def artist_pins(model, result, ict, head: dict, yaws, vertex_ids: np.ndarray, k: int):
    """Each photo's k pins by the fixed rule (module docstring), and their image errors before the re-solve (px).
    `vertex_ids` are the candidates."""
    from _identity_geom import true_image_points

    from facesmith.inference.fit import Pin

    pins, errors = [], []
    truths = true_image_points(model, ict, head, vertex_ids, yaws)
    for p, (photo, truth) in enumerate(zip(result.photos, truths, strict=True)):
        fitted = photo.camera.project(photo.vertices[vertex_ids])
        error = np.linalg.norm(fitted - truth.uv, axis=1)
        usable = (truth.gap < MAX_GAP_M) & truth.facing
        chosen = choose_pins(error, truth.uv, usable, k, MIN_SEPARATION * photo.face_size_px)
        for i in chosen:
            pins.append(Pin.at_vertex(model.faces, p, int(vertex_ids[i]), tuple(float(x) for x in truth.uv[i])))
        errors += list(error[chosen])
    return pins, errors


def timed_resolve(session, pins, start=None):
    """The re-solved result, its wall-clock ms and its CPU ms (this process, all threads: what a loaded machine's
    wall clock hides)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = session.resolve(pins, start)
    return out, 1000 * (time.perf_counter() - t0), 1000 * (time.process_time() - c0)


def dragged(pins):
    """The pins with the first one moved DRAG_PX to the right."""
    first = pins[0]
    return [dataclasses.replace(first, xy=(first.xy[0] + DRAG_PX, first.xy[1])), *pins[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_head_arguments(parser, 10, "heads (the first n of bench/identity.py's; 20 for record)")
    add_check_argument(parser)
    args = parser.parse_args()
    from _identity_geom import Ict, flame_lm7, make_scan, shape_distances

    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.pins import PinSession
    from facesmith.inference.pipeline import DetectedPhotos, Reconstructor, detect_photos

    model = load_bench_model(args.flame)
    ict = Ict()

    lm7, score = partial(flame_lm7, model), partial(shape_distances, model)

    def first(found: DetectedPhotos, n: int) -> DetectedPhotos:
        return dataclasses.replace(found, photos=found.photos[:n], observations=found.observations[:n],
                                   detections=found.detections[:n])  # fmt: skip

    heads = build_heads(args, model, ict, lm7)
    face = face_region(model)
    keys = ("mean_face", "floor", "fit_1photo", "pins_1photo_5", "pins_1photo_15", "fit_3photo", "pins_3photo_5each")
    dists = {k: [] for k in keys}
    times = {k: [] for k in ("first_1photo", "drag_1photo", "first_3photo", "drag_3photo")}
    cpu = {k: [] for k in times}
    rows, failed, pin_err_before, pin_err_after = [], 0, [], []
    with Reconstructor(pipeline_options(args.flame, landmarks="dense", fallback=False), model) as rec:
        for h in heads:
            p = dict(zip(YAWS, h["paths"], strict=True))
            yaws3 = (0, 30, -30)
            try:
                found = detect_photos([p[y] for y in yaws3], rec.detector, rec.options)
            except Exception as exc:  # noqa: BLE001 - a head the detector misses is counted, not fatal
                failed += 1
                log(f"  {h['folder'].name}: {exc}")
                continue
            if len(found.photos) < 3:
                failed += 1
                log(f"  {h['folder'].name}: a photo without a face")
                continue
            candidates = np.asarray(found.observations[0].vertex_ids)
            candidates = candidates[face[candidates]]
            scan = make_scan(ict, ict.vertices(h["w_id"]))
            d = {"mean_face": score(scan, np.zeros(model.n_shape)), "floor": score(scan, h["floor_shape"])}
            row = {"head": h["folder"].name, "expression": str(h["expression"])}
            for n, yaws, cases in ((1, yaws3[:1], (("pins_1photo_5", 5), ("pins_1photo_15", 15))),
                                   (3, yaws3, (("pins_3photo_5each", 5),))):  # fmt: skip
                auto = rec.fit_detected(first(found, n))
                d[f"fit_{n}photo"] = score(scan, auto.shape)
                session = PinSession(model, auto, rec.options.fit, rec.embedding)
                for key, k in cases:
                    pins, before = artist_pins(model, auto, ict, h, yaws, candidates, k)
                    pinned, ms, cpu_ms = timed_resolve(session, pins)
                    times[f"first_{n}photo"].append(ms)
                    cpu[f"first_{n}photo"].append(cpu_ms)
                    _, drag_ms, drag_cpu_ms = timed_resolve(session, dragged(pins), pinned)
                    times[f"drag_{n}photo"].append(drag_ms)
                    cpu[f"drag_{n}photo"].append(drag_cpu_ms)
                    d[key] = score(scan, pinned.shape)
                    pin_err_before += before
                    pin_err_after += list(pinned.pin_residuals_px)
                    row[f"{key}_ms"] = round(ms, 1)
                    row[f"{key}_drag_ms"] = round(drag_ms, 1)
            for key, v in d.items():
                dists[key].append(v)
            row.update({k: round(float(np.median(v)) * 1e3, 3) for k, v in d.items()})
            rows.append(row)
            log("  " + " ".join(f"{k}={v}" for k, v in row.items()))

    figs = {k: summary(v) if v else None for k, v in dists.items()}
    mean = figs["mean_face"]["median_mm"] if figs["mean_face"] else float("nan")

    def ratio(k):
        return None if figs[k] is None else round(figs[k]["median_mm"] / mean, 4)

    def median_ms(k):
        return round(float(np.median(times[k])), 1) if times[k] else None

    report = {
        "heads": args.n, "heads_scored": len(rows), "failed": failed, "mean_face_median_mm": mean,
        **{f"{k}_ratio": ratio(k) for k in keys if k != "mean_face"},
        **{f"{k}_median_mm": (figs[k] or {}).get("median_mm") for k in keys},
        **{f"{k}_ms_median": median_ms(k) for k in times},
        **{f"{k}_ms_max": round(float(np.max(v)), 1) if v else None for k, v in times.items()},
        **{f"{k}_cpu_ms_median": round(float(np.median(v)), 1) if v else None for k, v in cpu.items()},
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine's load at the end: read the ms with it
        "pin_image_error_before_px_median": round(float(np.median(pin_err_before)), 2) if pin_err_before else None,
        "pin_residual_after_px_median": round(float(np.median(pin_err_after)), 2) if pin_err_after else None,
        "per_head": rows,
    }  # fmt: skip
    goals = [
        Goal("pins_1photo_5_ratio", ratio("pins_1photo_5"), "<=", 0.80, ratio("fit_1photo"), "no pins, 1 photo"),
        Goal("pins_1photo_15_ratio", ratio("pins_1photo_15"), "<=", 0.70, ratio("fit_1photo"), "no pins, 1 photo"),
        Goal(
            "pins_3photo_5each_ratio", ratio("pins_3photo_5each"), "<=", 0.65, ratio("fit_3photo"), "no pins, 3 photos"
        ),  # fmt: skip
        Goal(
            "drag_ms_1photo_median", median_ms("drag_1photo"), "<=", 50.0, median_ms("first_1photo"), "first re-solve"
        ),  # fmt: skip
        Goal(
            "drag_ms_3photo_median", median_ms("drag_3photo"), "<=", 150.0, median_ms("first_3photo"), "first re-solve"
        ),  # fmt: skip
    ]
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
