"""Choose the fit's dense_noise_scale on held-out synthetic renders (never on bench/identity.py's test heads).

The network's σ treats each landmark's error as independent; neighbouring landmarks' errors are not, so taken
at face value several hundred landmarks outweigh the shape prior and the fit chases the network's mistakes.
Scaling σ up trades that off. For each scale: the identity error (median vertex distance over the face region,
similarity-aligned, mm) of single-photo fits on `facesmith synth` validation images, and of one identity seen at
0°, ±30° (the 0° fit, the best single fit, the joint fit). IN-MODEL SYNTHETIC: the renders come from FLAME.

    python -m facesmith.training.dense.tune_fit --model assets/dense_landmarks.onnx --scales 1,2,3,4,6
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from ...inference.fit import fit_flame, fit_person
from ...inference.flame import flame_forward
from ...inference.flame.regions import face_region
from ...inference.landmarks.dense import DENSE_MODEL, DenseLandmarker
from ...inference.landmarks.detect import MediaPipeBackend
from ...inference.options import DEFAULTS
from ...inference.pipeline import load_pipeline_model
from ..metrics import median_error_mm

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DENSE_MODEL)
    parser.add_argument("--data", type=Path, default=REPO / ".cache" / "dense" / "val")
    parser.add_argument("--n", type=int, default=60, help="single validation images")
    parser.add_argument("--views", type=int, default=12, help="identities seen at 0°, ±30°")
    parser.add_argument("--scales", default="1,2,3,4,6")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    from dense import ViewEngine, load_images, observe  # bench/dense.py: the same observation path

    model = load_pipeline_model(DEFAULTS)
    net = DenseLandmarker(args.model, device="cpu", threads=2)
    detector = MediaPipeBackend()
    mask = face_region(model)
    data = load_images(args.data, args.n)
    singles = []
    for img, beta in zip(data["images"], data["shape"], strict=True):
        found = observe(img, detector, net)
        if found:
            singles.append((found[0], beta[: model.n_shape]))
    views, rng, multi = ViewEngine(model), np.random.default_rng(7), []
    for h in range(args.views):
        beta = rng.normal(size=model.n_shape)
        found = [observe(views.render(beta, yaw, 7, 3 * h + k), detector, net) for k, yaw in enumerate((0, 30, -30))]
        if all(f is not None for f in found):
            multi.append(([f[0] for f in found], beta))
    detector.close()

    def err(shape: np.ndarray, beta: np.ndarray) -> float:
        truth = flame_forward(model, beta).vertices[0]
        return median_error_mm(flame_forward(model, shape).vertices[0], truth, mask)

    zero = np.zeros(model.n_shape)
    print(f"{len(singles)} single images, {len(multi)} identities x 3 views; mean face "
          f"{np.median([err(zero, b) for _, b in singles]):.3f} / {np.median([err(zero, b) for _, b in multi]):.3f} mm")  # fmt: skip
    for scale in (float(s) for s in args.scales.split(",")):
        options = dataclasses.replace(DEFAULTS.fit, dense_noise_scale=scale)
        t = time.perf_counter()
        single = [err(fit_flame(model, [o], options).shape, b) for o, b in singles]
        ms = (time.perf_counter() - t) / max(len(singles), 1) * 1000
        front, best, joint = [], [], []
        for obs, b in multi:
            each = [err(fit_person(model, [o], options)[0].shape, b) for o in obs]
            front.append(each[0])
            best.append(min(each))
            joint.append(err(fit_person(model, obs, options)[0].shape, b))
        worse = sum(j > s for j, s in zip(joint, best, strict=True))
        print(f"scale {scale:g}: single {np.median(single):.3f} mm ({ms:.0f} ms/fit) | 0° {np.median(front):.3f}, "
              f"best single {np.median(best):.3f}, joint {np.median(joint):.3f}; joint worse than best single "
              f"{worse}/{len(joint)}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
