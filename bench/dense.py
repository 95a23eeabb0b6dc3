"""The dense-landmark network (issue H): speed, and accuracy on held-out synthetic renders.

Speed (goals): one network pass on onnxruntime, batch 1, 2 CPU threads (median of 200); and network + fit for
one photo (both crop passes and `fit_flame`, detector excluded; median over the images). With a CUDA provider:
images/s at batch 64 (reported; "no CUDA provider here" otherwise).

Accuracy on `facesmith synth` renders of another seed than the training data (default .cache/dense/val):
IN-MODEL SYNTHETIC — the renders are made with FLAME and the engine the network learned from, so these figures
are an upper bound on what real photos give; bench/identity.py is the independent test. Per image: MediaPipe
finds the face (images where it finds none are counted), the network takes two crops; landmark error as a
share of the face size (the box of the 68 iBUG vertices, geometric mean of its sides), on all points and on
the ones the render shows; σ calibration (median |error| / σ: 1.18 for a calibrated 2D Gaussian); then
identity error of the neutral head (median vertex distance over the face region after similarity alignment,
mm) for the fit to dense landmarks, to MediaPipe's, to the exact projections of the same 554 vertices (what a
perfect network would give), and the mean face — same images, same run.

Test-time mirroring (`--mirror both`, the default): the landmark error, σ calibration, network + fit time and
dense identity error with the network's test-time mirroring off and on, same images, same run (the main
figures are the inference default's, on; `without_mirror` holds the others).

Several views, in-model: `--views` identities rendered at 0°, ±30° by the same engine; the fit to the 0° view,
the best of the three single-view fits, and the joint fit (reported; bench/identity.py holds the goal).

Usage: python bench/dense.py [--model assets/dense_landmarks.onnx] [--data .cache/dense/val] [--n 100]
       [--views 20] [--mirror both|on|off] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from _common import IN_MODEL, Goal, add_check_argument, finish, load_bench_model

from facesmith.inference.fit import Observation, fit_flame
from facesmith.inference.flame import flame_forward
from facesmith.inference.flame.regions import face_region
from facesmith.inference.landmarks.dense import DENSE_MODEL, DenseLandmarker, crop_box, crop_image
from facesmith.inference.landmarks.detect import MediaPipeBackend, dense_face
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import default_embedding
from facesmith.training.dense.views import load_images, score_views, view_sets
from facesmith.training.metrics import median_error_mm

REPO = Path(__file__).resolve().parents[1]


def latency_ms(net: DenseLandmarker, crop: np.ndarray, runs: int = 200) -> float:
    """One crop through `run_crop`: one pass, or the crop and its mirror image as a batch of two."""
    for _ in range(10):
        net.run_crop(crop)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        net.run_crop(crop)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def cuda_rate(model_path: Path, size: int) -> dict:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"cuda": "no CUDA provider here"}
    net = DenseLandmarker(model_path, device="cuda")
    batch = np.random.default_rng(0).random((64, 3, size, size), dtype=np.float32)
    for _ in range(5):
        net.run(batch)
    t = time.perf_counter()
    for _ in range(20):
        net.run(batch)
    return {"cuda_images_per_s_batch64": round(20 * 64 / (time.perf_counter() - t), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DENSE_MODEL)
    parser.add_argument("--data", type=Path, default=REPO / ".cache" / "dense" / "val")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--views", type=int, default=20, help="identities rendered at 0°, ±30° (0: skip)")
    parser.add_argument("--mirror", choices=("both", "on", "off"), default="both",
                        help="test-time mirroring: both compares off and on in the same run")  # fmt: skip
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()

    model = load_bench_model(args.flame)
    net = DenseLandmarker(args.model, device="cpu", threads=2)
    net.check_model(model)
    modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.mirror]
    spec = net.spec
    ids, rows = np.array(spec.vertex_ids), np.array(spec.ibug_rows)
    data = load_images(args.data, args.n)
    mask = face_region(model)
    options = DEFAULTS.fit
    embedding = default_embedding(model)
    detector = MediaPipeBackend()

    first = data["vertices_px"][0][ids]
    crop0 = crop_image(data["images"][0], crop_box(first[rows], spec.crop_scale), spec.input_size)
    ms_net = {}
    for mode in (False, True):
        net.mirror = mode
        ms_net[mode] = latency_ms(net, crop0)
    # Per mirroring mode: landmark errors, σ calibration, network + fit ms, dense identity error.
    per = {m: {"all": [], "vis": [], "calib": [], "ms": [], "id": []} for m in modes}
    id_mp, id_mean, id_exact, missed = [], [], [], 0
    same = lambda p: np.asarray(p, float)  # noqa: E731  (the renders are their own working images)
    for img, vpx, vis, beta in zip(data["images"], data["vertices_px"], data["visible"], data["shape"], strict=True):
        faces = detector.detect(img)
        if not faces:
            missed += 1
            continue
        obs_mp = Observation.from_face(faces[0], same, img.shape[1::-1])
        truth = vpx[ids]
        lo, hi = truth[rows].min(0), truth[rows].max(0)
        size = float(np.sqrt(max(hi[0] - lo[0], 1) * max(hi[1] - lo[1], 1)))
        true_neutral = flame_forward(model, beta[: model.n_shape]).vertices[0]
        for mode in modes:
            net.mirror = mode
            pred = dense_face(net, img, faces[0])  # the dense FaceLandmarks (points and σ in the render's pixels)
            obs = Observation.from_face(pred, same, img.shape[1::-1])
            t = time.perf_counter()  # network (both crops) + fit, the detector excluded
            net.predict(img, obs_mp.ibug68())
            sol = fit_flame(model, [obs], options)
            r = per[mode]
            r["ms"].append((time.perf_counter() - t) * 1000)
            d = np.linalg.norm(pred.points - truth, axis=1)
            r["all"].append(d.mean() / size)
            r["vis"].append(d[vis[ids]].mean() / size)
            r["calib"].append(np.median(d / pred.sigma))
            r["id"].append(median_error_mm(flame_forward(model, sol.shape).vertices[0], true_neutral, mask))
        net.mirror = modes[-1]
        sol_mp = fit_flame(model, [obs_mp], options, embedding=embedding)
        id_mp.append(median_error_mm(flame_forward(model, sol_mp.shape).vertices[0], true_neutral, mask))
        id_mean.append(median_error_mm(flame_forward(model).vertices[0], true_neutral, mask))
        # The same fit to the exact projections of the same vertices (σ 1 % of the face): what a perfect
        # network would give, so the gap to it is the network's.
        exact = dataclasses.replace(obs, points=truth.astype(np.float64), sigma=np.full(len(ids), 0.01 * size))
        sol_exact = fit_flame(model, [exact], options)
        id_exact.append(median_error_mm(flame_forward(model, sol_exact.shape).vertices[0], true_neutral, mask))

    def figures(r: dict) -> dict:
        return {"network_and_fit_ms_median": round(float(np.median(r["ms"])), 1),
                "nme_all_pct_face": round(100 * float(np.mean(r["all"])), 3),
                "nme_visible_pct_face": round(100 * float(np.mean(r["vis"])), 3),
                "sigma_calibration_median": round(float(np.median(r["calib"])), 3),
                "identity_dense_mm": round(float(np.median(r["id"])), 3)}  # fmt: skip

    main_fig = figures(per[modes[-1]])
    views = score_views(model, view_sets(model, net, detector, args.views), options, mask) if args.views else {}
    detector.close()
    report = {
        "model": str(args.model), "trained_on": spec.trained_on, "landmarks": len(ids), "input_size": spec.input_size,
        "images": len(data["images"]), "no_face_found": missed,
        "network_ms_batch1_2threads": round(ms_net[False], 3),
        "network_ms_mirrored_2threads": round(ms_net[True], 3), "crop_passes": 2, "test_time_mirror": bool(modes[-1]),
        **{k: v for k, v in main_fig.items() if k != "identity_dense_mm"},
        "without_mirror": figures(per[False]) if len(modes) == 2 else None,
        "in_model_identity_mm": {"dense": main_fig["identity_dense_mm"], "mediapipe": round(float(np.median(id_mp)), 3),
                                 "mean_face": round(float(np.median(id_mean)), 3),
                                 "exact_dense_landmarks": round(float(np.median(id_exact)), 3)},
        "in_model_views": views,
        **cuda_rate(args.model, spec.input_size),
    }  # fmt: skip
    goals = [
        Goal("network_ms", report["network_ms_mirrored_2threads" if modes[-1] else "network_ms_batch1_2threads"],
             "<=", 15.0),
        Goal("network_and_fit_ms", report["network_and_fit_ms_median"], "<=", 60.0),
        Goal("in_model_identity_dense_mm", report["in_model_identity_mm"]["dense"], "<=",
             report["in_model_identity_mm"]["mediapipe"], report["in_model_identity_mm"]["mediapipe"],
             "MediaPipe fit", IN_MODEL, goal="<= the MediaPipe fit's"),
    ]  # fmt: skip
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
