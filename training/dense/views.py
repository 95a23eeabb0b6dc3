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


# session_view's painted eyes: the first of the training renders' iris colours (brown), the middle of their sclera
# range (linear) and of their iris / pupil edges (cos of the angle from the pupil axis).
SESSION_IRIS_SRGB = np.array([0.25, 0.14, 0.07])
SESSION_SCLERA = 0.42
SESSION_IRIS_PUPIL_COS = (0.855, 0.965)


def session_view(
    model: FlameModel, beta: np.ndarray, yaw_deg: float, texture: np.ndarray, light: np.ndarray, size: int = 512,
    expression: np.ndarray | None = None, pose: np.ndarray | None = None, eyelids: np.ndarray | None = None,
    painted: bool = False,
) -> np.ndarray:  # fmt: skip
    """One photo of a session with the fit's own image model: the head turned by yaw_deg (or posed by `pose`,
    (5, 3) axis-angle; with `expression` and `eyelids` if given) in front of a fixed perspective camera (0.6 m,
    focal 1.6 × the side), albedo from a UV texture (sRGB uint8, FLAME's layout) × the SH irradiance of a light
    (9, 3) fixed in the world (the head turns under it), over flat grey. IN-MODEL: the upper bound for
    photo-consistency and tracking, used to tune the one and to score both. `painted`: the eyeballs (sclera, brown
    iris, pupil) and the mouth's inside (back faces seen through the lips, dark red) as the training renders paint
    them (synth/engine.py), not from the texture: its eye and inner-lip regions hold whatever the pipeline baked
    there, which is filled skin (a pale open mouth and eyes without irises)."""
    from ...inference.flame.forward import surface_points, vertex_normals
    from ...inference.texture.albedo import sample_bilinear, sh_basis
    from ...inference.texture.maps import linear_to_srgb, srgb_to_linear
    from ..synth.engine import MOUTH_INSIDE_SRGB, euler_to_axis_angle, eye_colours, eyeball_geometry
    from ..synth.raster import rasterize

    if pose is None:
        pose = np.zeros((5, 3))
        pose[0] = euler_to_axis_angle(np.radians(yaw_deg), 0.0, 0.0)
    lids = None if eyelids is None or model.eyelid_left is None else np.asarray(eyelids)[None]
    v = flame_forward(model, beta, expression, pose, lids).vertices[0]
    focal, distance = 1.6 * size, 0.6
    depth = distance - v[:, 2]
    xy = np.stack([size / 2 + focal * v[:, 0] / depth, size / 2 - focal * v[:, 1] / depth], axis=1)
    ras = rasterize(xy, v[:, 2], model.faces.astype(np.int64), size, size)
    tri, bary = ras.pixel_triangle.astype(np.int64), ras.pixel_bary.astype(np.float64)
    normals = surface_points(vertex_normals(v, model.faces)[None], model.faces, tri, bary)[0]
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    uv = np.einsum("nk,nkc->nc", bary, model.uv_coords[model.uv_faces[tri]])
    side = texture.shape[0]
    px = np.stack([uv[:, 0] * side - 0.5, (1 - uv[:, 1]) * side - 0.5], axis=1)
    albedo = srgb_to_linear(sample_bilinear(texture.astype(np.float32), px) / 255.0)
    if painted:
        on_eye = model.eyeball_triangles()[tri]
        cos = np.einsum("nk,nk->n", bary, eyeball_geometry(model)[1][model.faces[tri]])[on_eye]
        albedo[on_eye] = eye_colours(cos, srgb_to_linear(SESSION_IRIS_SRGB), SESSION_SCLERA, *SESSION_IRIS_PUPIL_COS)
        points = surface_points(v[None], model.faces, tri, bary)[0]
        inside = np.einsum("nc,nc->n", normals, np.array([0.0, 0.0, distance]) - points) < 0  # facing away
        albedo[inside] = srgb_to_linear(MOUTH_INSIDE_SRGB)
        normals[inside] *= -1  # lit as the surface the camera sees
    image = np.full((size * size, 3), 0.3)
    image[ras.pixels] = linear_to_srgb(np.clip(albedo * np.maximum(sh_basis(normals) @ light, 0), 0, 1))
    return np.round(image.reshape(size, size, 3) * 255).astype(np.uint8)


def session_light(rng: np.random.Generator) -> np.ndarray:
    """A soft light (9, 3): ambient plus a key from a random direction in front, white."""
    light = np.zeros((9, 3))
    light[0] = 3.0
    light[1:4] = (rng.normal(0, 1, 3) + np.array([0.0, 0.5, 1.0]))[:, None] * 0.8
    return light
