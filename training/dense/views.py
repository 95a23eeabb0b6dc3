"""Held-out synthetic renders for judging the dense network and its fit (bench/dense.py, tune_fit.py).

IN-MODEL SYNTHETIC: the renders come from FLAME and the engine the network learned from, so what is measured
here is an upper bound on real photos (bench/identity.py is the independent test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...inference.fit import Observation, fit_person
from ...inference.flame import flame_forward
from ...inference.flame.model import FlameModel
from ...inference.landmarks.dense import DenseLandmarker
from ...inference.landmarks.detect import LandmarkBackend, dense_face
from ...inference.options import FitOptions
from ..metrics import median_error_mm
from ..synth.shards import read_first

VIEW_YAWS = (0, 30, -30)


def load_images(folder: Path, n: int) -> dict:
    """The first n images of a `facesmith synth` folder with their vertices, visibility and β."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    return read_first(Path(folder), manifest, n, ("images", "vertices_px", "visible", "shape"))


def observe(img: np.ndarray, detector: LandmarkBackend, net: DenseLandmarker):
    """(dense Observation, the detector's Observation, the dense FaceLandmarks) of the largest face, or None.
    The renders are their own working images, so pixels map to themselves."""
    faces = detector.detect(img)
    if not faces:
        return None
    dense = dense_face(net, img, faces[0])
    same = lambda p: np.asarray(p, float)  # noqa: E731
    size = img.shape[1::-1]
    return Observation.from_face(dense, same, size), Observation.from_face(faces[0], same, size), dense


class ViewEngine:
    """The synth engine with one identity and a chosen yaw (pitch, roll small): several views of one head."""

    def __init__(self, model: FlameModel, size: int = 256) -> None:
        from ..synth.engine import euler_to_axis_angle
        from ..synth.shards import build_engine

        self.engine, _ = build_engine(model, size, log=lambda s: None)
        self.to_aa = euler_to_axis_angle
        self.original = self.engine.sample

    def render(self, beta: np.ndarray, yaw: float, seed: int, index: int) -> np.ndarray:
        """One view. The same (seed, index) at another yaw draws the same skin, expression, camera and (mostly)
        light and background: one session's photos of a head that turns (what photo-consistency assumes)."""

        def sample(rng):
            p = self.original(rng)
            pitch, roll = np.clip(rng.normal(0, 5, 2), -10, 10)
            p["shape"] = beta
            p["pose"][0] = self.to_aa(*np.radians([yaw, pitch, roll]))
            p["euler_deg"] = np.array([yaw, pitch, roll])
            return p

        self.engine.sample = sample
        try:
            return self.engine.make(seed, index)[0]
        finally:
            self.engine.sample = self.original


def view_sets(model: FlameModel, net: DenseLandmarker, detector: LandmarkBackend, n_heads: int, seed: int = 7):
    """[(dense Observations at VIEW_YAWS, β)] for n identities (β ~ N(0, 1)); albedo, expression, light and
    camera drawn per view. Heads where the detector misses a view are left out."""
    views, rng, out = ViewEngine(model), np.random.default_rng(seed), []
    for h in range(n_heads):
        beta = rng.normal(size=model.n_shape)
        found = [observe(views.render(beta, yaw, seed, len(VIEW_YAWS) * h + k), detector, net)
                 for k, yaw in enumerate(VIEW_YAWS)]  # fmt: skip
        if all(f is not None for f in found):
            out.append(([f[0] for f in found], beta))
    return out


def identity_error(model: FlameModel, shape: np.ndarray, beta: np.ndarray, mask: np.ndarray) -> float:
    """Median vertex distance (mm) of the neutral heads over `mask`, after similarity alignment."""
    return median_error_mm(flame_forward(model, shape).vertices[0], flame_forward(model, beta).vertices[0], mask)


def score_views(model: FlameModel, sets, options: FitOptions, mask: np.ndarray) -> dict:
    """Medians over the heads (mm): the mean face, the fit to the 0° view, the best single-view fit, the joint
    fit to all views; and on how many heads the joint fit is worse than the best single one."""
    front, best, joint, mean = [], [], [], []
    for obs, beta in sets:
        each = [identity_error(model, fit_person(model, [o], options)[0].shape, beta, mask) for o in obs]
        front.append(each[0])
        best.append(min(each))
        joint.append(identity_error(model, fit_person(model, obs, options)[0].shape, beta, mask))
        mean.append(identity_error(model, np.zeros(model.n_shape), beta, mask))

    def med(v: list[float]) -> float | None:
        return round(float(np.median(v)), 3) if v else None

    return {"heads": len(sets), "mean_face": med(mean), "dense_1photo": med(front), "dense_best_single": med(best),
            "dense_3photo": med(joint),
            "dense_3photo_worse_than_best_single": int(sum(j > b for j, b in zip(joint, best, strict=True)))}  # fmt: skip
