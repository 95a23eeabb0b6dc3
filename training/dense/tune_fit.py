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
import time
from pathlib import Path

import numpy as np

from ...inference.fit import fit_flame
from ...inference.flame.regions import face_region
from ...inference.landmarks.dense import DENSE_MODEL, DenseLandmarker
from ...inference.landmarks.detect import MediaPipeBackend
from ...inference.options import DEFAULTS
from ...inference.pipeline import load_pipeline_model
from .views import identity_error, load_images, observe, score_views, view_sets

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DENSE_MODEL)
    parser.add_argument("--data", type=Path, default=REPO / ".cache" / "dense" / "val")
    parser.add_argument("--n", type=int, default=60, help="single validation images")
    parser.add_argument("--views", type=int, default=12, help="identities seen at 0°, ±30°")
    parser.add_argument("--scales", default="1,2,3,4,6")
    args = parser.parse_args(argv)

    model = load_pipeline_model(DEFAULTS)
    net = DenseLandmarker(args.model, device="cpu", threads=2)
    net.check_model(model)  # also gives the template test-time mirroring needs (as the pipeline)
    detector = MediaPipeBackend()
    mask = face_region(model)
    data = load_images(args.data, args.n)
    singles = []
    for img, beta in zip(data["images"], data["shape"], strict=True):
        found = observe(img, detector, net)
        if found:
            singles.append((found[0], beta[: model.n_shape]))
    sets = view_sets(model, net, detector, args.views)
    detector.close()

    zero = np.zeros(model.n_shape)
    print(f"{len(singles)} single images, {len(sets)} identities x 3 views; mean face "
          f"{np.median([identity_error(model, zero, b, mask) for _, b in singles]):.3f} mm")  # fmt: skip
    for scale in (float(s) for s in args.scales.split(",")):
        options = dataclasses.replace(DEFAULTS.fit, dense_noise_scale=scale)
        t = time.perf_counter()
        single = [identity_error(model, fit_flame(model, [o], options).shape, b, mask) for o, b in singles]
        ms = (time.perf_counter() - t) / max(len(singles), 1) * 1000
        v = score_views(model, sets, options, mask)
        print(f"scale {scale:g}: single {np.median(single):.3f} mm ({ms:.0f} ms/fit) | views (mean face "
              f"{v['mean_face']}): 0° {v['dense_1photo']}, best single {v['dense_best_single']}, joint "
              f"{v['dense_3photo']}; joint worse than best single {v['dense_3photo_worse_than_best_single']}/"
              f"{v['heads']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
