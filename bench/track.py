"""Footage -> animation, on a synthetic performance with known curves.

IN-MODEL SYNTHETIC: a FLAME head (β ~ N(0, 1), seed 3) with a skin texture of the albedo bank, rendered by
training/dense/views.session_view (SH light, perspective camera, 512², eyeballs and the mouth's inside painted as
the training renders paint them) for --seconds at --fps: speech-like jaw
motion (syllables at about 4 Hz), slow random expression curves, blinks (FLAME's eyelid blendshapes; the tracker
reads them from the detector's lid points), head turning ±15° and nodding. The frames go through
inference/track.py as a video would (dense landmarks, β fixed to the truth, as with an existing head).

Figures, over the face region (neck, global pose and gaze left out: the expression and jaw as the rig shows them):
- vertex_error_mm: median over frames and vertices of |tracked − true|; baseline: the neutral face (ψ = 0, jaw 0);
- moving_error_mm: the same where the truth is more than 2 mm from neutral (the median above is mostly still skin);
- jitter_ratio: mean |second difference over frames| of the tracked vertices ÷ the truth's; baseline: unsmoothed;
- mouth_lag_frames: the shift that best aligns the tracked mouth opening with the true one;
- tracked_fps: frames per second of tracking alone (landmarks + fit + smoothing), 2 cores;
- blink_correlation: tracked against true eyelid weights (reported).

Goals: vertex_error_mm <= 1.5, jitter_ratio <= 1.5, |mouth_lag_frames| <= 1, tracked_fps >= 15; and
moving_error_mm <= 0.75 x the neutral face's, jitter_ratio >= 0.5 (jitter_ratio_min) and a mouth that moves (its lag
is undefined otherwise): a tracker that shows a still neutral face fails those three (the median alone, the jitter
bound and the fps would pass it).

First measured (2026-12-01, development model, 250 frames, 2 cores): vertex error 0.858 mm (neutral face 0.726: the
face is mostly still skin), where it moves 2.549 mm (neutral 5.04), p90 3.22 mm; jitter 0.954× the truth's; mouth
lag 0 frames; 23.5 frames a second; blinks correlate 0.81 with the truth. Not reproducible since: the same commit
(0246e11) run on 2026-12-07 gives 1.01 mm and 4.675 mm where it moves, blinks 0.60. One cause found: the albedo bank the head's texture
comes from was rebuilt with the current pipeline, whose eye and inner-lip texels are filled skin, so the renders
had eyes without irises and a pale open mouth; hence the painted eyes and mouth (blinks back to 0.82). The moving
error's change is not explained by it (still 4.9 mm with them).
Measured 2026-12-07 with them (loaded machine): vertex error 0.869 mm (neutral 0.726), where it moves 4.936 mm —
0.98 × the still neutral face's 5.04: MISSED (goal 0.75 ×); jitter 1.025× (unsmoothed 1.385×), lag 0 frames,
8.0 frames a second (MISSED), blinks 0.82. What misses: the jaw tracks (correlation 0.98 with the truth) but the
expression components past the first barely do (0.09-0.53); the error is largest while the head is turned 10-15°
(where the truth is near neutral the tracked face is not: 5.3 against 2.8 mm), and a 4-second take with smaller turns
scores 0.52 × (.cache/exp/trackdiag.py).

Usage: python bench/track.py [--seconds 10] [--fps 25] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Goal, add_check_argument, finish, load_bench_model  # noqa: E402

# The tracked face's error where the truth moves, as a share of the still neutral face's: measured 0.51 on
# 2026-12-01 (2.549 against 5.04 mm), 0.98 today (see the docstring: a miss to fix, not a goal to lower). And the
# tracked face's roughness over frames (jitter_ratio) at least this share of the truth's (measured 0.954): a still
# face (0) or one smoothed flat fails, as the upper bound fails a jittery one.
MOVING_SHARE, MIN_JITTER_RATIO = 0.75, 0.5


def performance(n: int, fps: float, n_expr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """True curves: expression (n, E), pose (n, 5, 3), eyelids (n, 2)."""
    t = np.arange(n) / fps
    expression = np.zeros((n, n_expr))
    for k in range(min(8, n_expr)):  # slow expression changes: a few sinusoids per component
        f, phase = rng.uniform(0.15, 0.8, 2), rng.uniform(0, 2 * np.pi, 2)
        expression[:, k] = 0.6 * (
            np.sin(2 * np.pi * f[0] * t + phase[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + phase[1])
        )
    pose = np.zeros((n, 5, 3))
    syllables = np.abs(np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6))) ** 1.5  # ~4 openings a second
    talking = (np.sin(2 * np.pi * 0.12 * t) > -0.4).astype(float)  # pauses
    pose[:, 2, 0] = 0.02 + 0.2 * syllables * talking
    pose[:, 0, 1] = np.radians(15) * np.sin(2 * np.pi * 0.1 * t)
    pose[:, 0, 0] = np.radians(5) * np.sin(2 * np.pi * 0.23 * t + 1.0)
    eyelids = np.zeros((n, 2))
    for start in rng.choice(np.arange(int(fps), n - int(fps)), size=max(1, n // int(3 * fps)), replace=False):
        width = int(0.15 * fps) + 1
        shape = np.sin(np.linspace(0, np.pi, 2 * width + 1))
        eyelids[start - width : start + width + 1] = np.maximum(
            eyelids[start - width : start + width + 1], shape[:, None]
        )
    return {"expression": expression, "pose": pose, "eyelids": eyelids}


def face_vertices(model, beta, expression, pose, eyelids=None) -> np.ndarray:
    """(N, V, 3) posed by expression and jaw only (global, neck and eyes at rest)."""
    from facesmith.inference.flame import flame_forward

    local = np.zeros_like(pose)
    local[:, 2] = pose[:, 2]
    lids = None if eyelids is None or model.eyelid_left is None else eyelids
    return flame_forward(model, np.broadcast_to(beta, (len(pose), len(beta))), expression, local, lids).vertices


def lag_frames(truth: np.ndarray, est: np.ndarray, max_lag: int = 5) -> int | None:
    """The shift (frames) that best aligns `est` with `truth`; None when `est` does not move (no lag to find)."""
    a, b = truth - truth.mean(), est - est.mean()
    if np.abs(b).max() < 1e-6:
        return None
    scores = {
        lag: float(np.dot(a[max_lag:-max_lag], np.roll(b, -lag)[max_lag:-max_lag]))
        for lag in range(-max_lag, max_lag + 1)
    }
    return max(scores, key=scores.get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    from facesmith.inference.flame.regions import face_region
    from facesmith.inference.landmarks.detect import LandmarkDetector, available_backends, crop_detector
    from facesmith.inference.options import DEFAULTS
    from facesmith.inference.track import TrackOptions, track
    from facesmith.training.dense.views import session_light, session_view
    from facesmith.training.synth.shards import build_engine

    model = load_bench_model(args.flame)
    rng = np.random.default_rng(3)
    beta = rng.normal(size=model.n_shape)
    n = int(args.seconds * args.fps)
    truth = performance(n, args.fps, model.n_expr, rng)
    engine, _ = build_engine(model, log=lambda s: None)
    texture = engine.assets.albedos[int(rng.integers(len(engine.assets.albedos)))]
    light = session_light(rng)
    t0 = time.perf_counter()
    frames = [session_view(model, beta, 0.0, texture, light, 512, truth["expression"][i], truth["pose"][i],
                           truth["eyelids"][i], painted=True) for i in range(n)]  # fmt: skip
    render_s = time.perf_counter() - t0
    detector = LandmarkDetector("dense", crop_detector(available_backends()))
    results = {}
    for smooth in (1, TrackOptions().smooth_frames):
        options = dataclasses.replace(TrackOptions(), smooth_frames=smooth)
        t0 = time.perf_counter()
        results[smooth] = track(model, beta, iter(enumerate(frames)), n, args.fps, detector, DEFAULTS.fit, options)
        results[smooth] = (results[smooth], n / (time.perf_counter() - t0))
    detector.close()
    mask = face_region(model)
    true_v = face_vertices(model, beta, truth["expression"], truth["pose"], truth["eyelids"])[:, mask]
    neutral_v = face_vertices(model, beta, np.zeros_like(truth["expression"]), np.zeros_like(truth["pose"]))[:, mask]

    # Where the truth moves more than 2 mm from its neutral face (mouth, jaw, cheeks in motion): there the median
    # over the whole face (mostly still forehead and temples) says little.
    moving = np.linalg.norm(true_v - neutral_v, axis=2) > 0.002
    figs = {}
    for smooth, (tracked, fps) in results.items():
        est = face_vertices(model, beta, tracked.expression, tracked.pose, tracked.eyelids)[:, mask]
        figs[smooth] = {
            **motion_figures(est, true_v, moving, truth["pose"][:, 2, 0], tracked.pose[:, 2, 0]),
            "tracked_fps": round(fps, 2),
            "frames_lost": int((~tracked.found).sum()),
            "blink_correlation": round(float(np.corrcoef(tracked.eyelids.ravel(), truth["eyelids"].ravel())[0, 1]), 3)
            if tracked.eyelids is not None and truth["eyelids"].std() > 0
            else None,
        }
    neutral_err = round(float(np.median(np.linalg.norm(neutral_v - true_v, axis=2))) * 1000, 3)
    neutral_moving = round(float(np.median(np.linalg.norm(neutral_v - true_v, axis=2)[moving])) * 1000, 3)
    smoothed, raw = figs[TrackOptions().smooth_frames], figs[1]
    report = {"frames": n, "fps": args.fps, "render_s": round(render_s, 1), "neutral_error_mm": neutral_err,
              "neutral_moving_error_mm": neutral_moving,
              "smoothed": smoothed, "unsmoothed": raw}  # fmt: skip
    goals = track_goals(smoothed, raw, neutral_err, neutral_moving)
    finish(report, goals, not args.no_check)


def second_difference(v: np.ndarray) -> float:
    """Mean |second difference over frames| of (N, V, 3) vertices."""
    return float(np.linalg.norm(v[2:] - 2 * v[1:-1] + v[:-2], axis=2).mean())


def motion_figures(est: np.ndarray, true_v: np.ndarray, moving: np.ndarray, mouth_true, mouth_est) -> dict:
    """The figures of one track: tracked and true (N, V, 3) face vertices, `moving` (N, V) where the truth is away
    from neutral, the true and tracked jaw opening (N,)."""
    err = np.linalg.norm(est - true_v, axis=2)
    return {
        "vertex_error_mm": round(float(np.median(err)) * 1000, 3),
        "moving_error_mm": round(float(np.median(err[moving])) * 1000, 3),
        "vertex_error_p90_mm": round(float(np.percentile(err, 90)) * 1000, 3),
        "jitter_ratio": round(second_difference(est) / second_difference(true_v), 3),
        "mouth_lag_frames": lag_frames(mouth_true, mouth_est),
    }


def track_goals(smoothed: dict, raw: dict, neutral_err: float, neutral_moving: float) -> list[Goal]:
    """The goals; a tracker that shows a still neutral face fails three (moving error, jitter, mouth lag)."""
    lag = smoothed["mouth_lag_frames"]
    raw_lag = raw["mouth_lag_frames"]
    return [
        Goal("vertex_error_mm", smoothed["vertex_error_mm"], "<=", 1.5, neutral_err, "neutral face", "in-model"),
        Goal(
            "moving_error_mm",
            smoothed["moving_error_mm"],
            "<=",
            MOVING_SHARE * neutral_moving,
            neutral_moving,
            "neutral face",
            "in-model",
            goal=f"<= {MOVING_SHARE} x the neutral face's",
        ),
        Goal("jitter_ratio", smoothed["jitter_ratio"], "<=", 1.5, raw["jitter_ratio"], "unsmoothed", "in-model"),
        Goal(
            "jitter_ratio_min",
            smoothed["jitter_ratio"],
            ">=",
            MIN_JITTER_RATIO,
            raw["jitter_ratio"],
            "unsmoothed",
            "in-model",
            goal=f"jitter_ratio >= {MIN_JITTER_RATIO}",
        ),
        Goal(
            "mouth_lag_frames",
            None if lag is None else float(abs(lag)),
            "<=",
            1.0,
            None if raw_lag is None else float(abs(raw_lag)),
            "unsmoothed",
            "in-model",
        ),
        Goal("tracked_fps", smoothed["tracked_fps"], ">=", 15.0),
    ]


if __name__ == "__main__":
    main()
