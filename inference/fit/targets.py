"""What the fit matches: landmarks observed in a photo, and the FLAME surface points they correspond to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..flame.model import FlameModel
from ..landmarks.detect import MEDIAPIPE_TO_IBUG68, FaceLandmarks
from ..landmarks.embedding import Embedding
from ..options import FitOptions

# MediaPipe mesh indices on the lips and the nose (Deng et al. weight mouth and nose landmarks up).
MEDIAPIPE_LIPS = frozenset({
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270, 291,
    308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415
})  # fmt: skip
MEDIAPIPE_NOSE = frozenset({
    1, 2, 4, 5, 6, 19, 45, 48, 64, 75, 79, 94, 97, 98, 102, 115, 129, 168, 195, 197, 218, 219, 220, 237, 275, 278,
    294, 305, 309, 326, 327, 331, 344, 358, 438, 439, 440, 457
})  # fmt: skip
IBUG_NOSE_MOUTH = np.r_[27:36, 48:68]


@dataclass(frozen=True)
class Observation:
    """Landmarks of one face in original-photo pixels, and what they correspond to on FLAME."""

    points: np.ndarray  # (N, 2)
    scheme: str  # "mediapipe478", "ibug68" or "dense"
    image_size: tuple[int, int]  # (width, height)
    iris: np.ndarray | None = None  # (2, 2) subject's right, left iris centres
    # Dense only (see FaceLandmarks): FLAME vertex per point, σ per point (pixels), rows of the 68 iBUG vertices.
    vertex_ids: np.ndarray | None = None
    sigma: np.ndarray | None = None
    ibug_rows: np.ndarray | None = None

    @staticmethod
    def from_face(face: FaceLandmarks, to_original, image_size: tuple[int, int]) -> Observation:
        iris = face.iris_centres()
        sigma = None
        if face.sigma is not None:  # pixels scale like distances: the working -> original factor
            sigma = face.sigma * float(to_original(np.array([1.0, 0.0]))[0] - to_original(np.zeros(2))[0])
        return Observation(
            to_original(face.points), face.scheme, image_size, None if iris is None else to_original(iris),
            face.vertex_ids, sigma, face.ibug_rows,
        )  # fmt: skip

    @property
    def face_size(self) -> float:
        pts = self.ibug68()
        span = pts.max(0) - pts.min(0)
        return float(np.sqrt(max(span[0], 1.0) * max(span[1], 1.0)))

    def ibug68(self) -> np.ndarray:
        if self.scheme == "dense":
            return self.points[self.ibug_rows]
        return self.points if self.scheme == "ibug68" else self.points[MEDIAPIPE_TO_IBUG68]


@dataclass(frozen=True)
class Targets:
    """Static correspondences (fixed surface points) and the 17 contour points (chosen by yaw)."""

    faces: np.ndarray  # (Ls,)
    bary: np.ndarray  # (Ls, 3)
    points: np.ndarray  # (Ls, 2)
    weights: np.ndarray  # (Ls,)
    contour_points: np.ndarray  # (17, 2)
    contour_weights: np.ndarray  # (17,) (dense: none)
    names: tuple[str, ...]  # one label per landmark: "mp:<index>", "ibug:<index>", "dense:<row>" or "pin:<i>" (the
    # photo's i-th pin), static first
    noise: np.ndarray | None = None  # (Ls,) each static landmark's σ as a fraction of the face size (None: the
    # fit's landmark_sigma for all)
    pinned: np.ndarray | None = None  # (Ls,) bool: the static points that are an artist's pins (fit/pins.py), last


@dataclass(frozen=True)
class Pin:
    """An artist's correction: a surface point of the head held at a pixel of one photo."""

    photo: int  # which photo of the fit (its index)
    face: int  # FLAME triangle
    bary: tuple[float, float, float]  # barycentric coordinates of the point in it
    xy: tuple[float, float]  # where the point belongs: the photo's original pixels, x right, y down

    @staticmethod
    def at_vertex(faces: np.ndarray, photo: int, vertex: int, xy: tuple[float, float]) -> Pin:
        tri, bary = vertex_surface_points(np.asarray(faces), np.array([vertex]))
        return Pin(photo, int(tri[0]), (float(bary[0, 0]), float(bary[0, 1]), float(bary[0, 2])), xy)


def pin_problem(pin: Pin, n_faces: int, n_photos: int) -> str | None:
    """Why a pin cannot be used with a model of `n_faces` triangles and `n_photos` photos, or None."""
    if not 0 <= pin.photo < n_photos:
        return f"photo {pin.photo} is not one of the {n_photos} photo(s)"
    if not 0 <= pin.face < n_faces:
        return f"face {pin.face} is not a triangle of the model (0 to {n_faces - 1})"
    bary = np.asarray(pin.bary, float)
    if bary.shape != (3,) or not np.isfinite(bary).all() or (bary < -1e-6).any() or abs(bary.sum() - 1) > 1e-3:
        return f"bary {list(pin.bary)} are not 3 barycentric coordinates (≥ 0, sum 1)"
    if len(pin.xy) != 2 or not np.isfinite(np.asarray(pin.xy, float)).all():
        return f"xy {list(pin.xy)} is not a finite pixel position [x, y]"
    return None


def pin_targets(targets: Targets, pins: Sequence[Pin], landmark_sigma: float, pin_sigma: float) -> Targets:
    """`targets` with `pins` (all of one photo) appended as static points of σ `pin_sigma` (a fraction of the face
    size, as the landmarks' noise); the landmarks keep theirs (`landmark_sigma` where they carry none)."""
    if not pins:
        return targets
    n = len(targets.points)
    noise = np.full(n, landmark_sigma) if targets.noise is None else targets.noise
    pinned = np.zeros(n, bool) if targets.pinned is None else targets.pinned
    return Targets(
        np.r_[targets.faces, [p.face for p in pins]].astype(np.int64),
        np.r_[targets.bary, [p.bary for p in pins]],
        np.r_[targets.points, [p.xy for p in pins]],
        np.r_[targets.weights, np.ones(len(pins))],
        targets.contour_points,
        targets.contour_weights,
        targets.names[:n] + tuple(f"pin:{i}" for i in range(len(pins))) + targets.names[n:],  # as correspondences
        np.r_[noise, np.full(len(pins), pin_sigma)],
        np.r_[pinned, np.ones(len(pins), bool)],
    )


def mediapipe_embedding(model: FlameModel, learned: Embedding | None) -> Embedding | None:
    """The learned MediaPipe embedding, completed by FLAME's own 105-point one for points it lacks.

    The learned one wins where both exist: it was measured against true geometry under MediaPipe itself.
    """
    if not model.has_mediapipe:
        return learned
    official = Embedding(model.mediapipe_lmk_indices, model.mediapipe_lmk_faces, model.mediapipe_lmk_bary)
    if learned is None:
        return official
    rest = ~np.isin(official.indices, learned.indices)
    return Embedding(
        np.r_[learned.indices, official.indices[rest]],
        np.r_[learned.faces, official.faces[rest]],
        np.r_[learned.bary, official.bary[rest]],
    )


def vertex_surface_points(faces: np.ndarray, vertex_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A surface point exactly at each vertex: the first triangle using it, all weight on that corner."""
    flat = faces.ravel()
    first = np.full(int(flat.max()) + 1, len(faces), np.int64)
    np.minimum.at(first, flat, np.arange(len(flat)) // 3)  # the lowest triangle index using each vertex
    tri = first[vertex_ids]
    if (tri >= len(faces)).any():
        raise ValueError("a dense landmark vertex is in no triangle")
    return tri, (faces[tri] == np.asarray(vertex_ids)[:, None]).astype(np.float64)


def dense_targets(model: FlameModel, obs: Observation, options: FitOptions) -> Targets:
    """Dense landmarks are FLAME vertices: fixed surface points, no sliding contour; each carries the network's
    σ (times options.dense_noise_scale, floored), which the fit uses as that landmark's noise."""
    faces, bary = vertex_surface_points(np.asarray(model.faces), obs.vertex_ids)
    noise = np.maximum(options.dense_noise_scale * obs.sigma / obs.face_size, options.dense_noise_floor)
    names = tuple(f"dense:{i}" for i in range(len(obs.points)))
    empty = np.zeros((0, 2))
    return Targets(faces, bary, obs.points, np.ones(len(obs.points)), empty, np.zeros(0), names, noise)


def make_targets(
    model: FlameModel, obs: Observation, options: FitOptions, embedding: Embedding | None = None
) -> Targets:
    if obs.scheme == "dense":
        return dense_targets(model, obs, options)
    ibug = obs.ibug68()
    contour_w = np.full(17, options.contour_weight)
    emb = mediapipe_embedding(model, embedding)
    if obs.scheme == "mediapipe478" and emb is not None:
        # MediaPipe points that stand in for the jaw line follow FLAME's contour, not a fixed surface point.
        keep = ~np.isin(emb.indices, MEDIAPIPE_TO_IBUG68[:17])
        idx, faces, bary = emb.indices[keep], emb.faces[keep], emb.bary[keep]
        weights = np.array(
            [options.mouth_nose_weight if i in MEDIAPIPE_LIPS or i in MEDIAPIPE_NOSE else 1.0 for i in idx]
        )
        names = tuple(f"mp:{i}" for i in idx) + tuple(f"ibug:{i}" for i in range(17))
        return Targets(faces, bary, obs.points[idx], weights, ibug[:17], contour_w, names)
    weights = np.ones(51)
    weights[IBUG_NOSE_MOUTH - 17] = options.mouth_nose_weight
    names = tuple(f"ibug:{i}" for i in range(17, 68)) + tuple(f"ibug:{i}" for i in range(17))
    return Targets(model.static_lmk_faces, model.static_lmk_bary, ibug[17:], weights, ibug[:17], contour_w, names)
