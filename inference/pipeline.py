"""Photos of one person -> FLAME fit (`fit_photos`). Stages: load, detect, fit; each timed."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .detect import Detection, LandmarkDetector
from .errors import FacesmithError
from .fit import FitOptions, FitSolution, Observation, fit_flame
from .flame import flame_forward, landmarks68
from .flame_model import FlameModel
from .images import DEFAULT_WORKING_SIDE, load_photo
from .model_paths import DENSE_EMBEDDING
from .mp_embedding import Embedding, load_embedding
from .result import FitResult, PhotoFit

Progress = Callable[[float, str], None]


class CancelledError(FacesmithError):
    """The user cancelled the run."""


@dataclass(frozen=True)
class PipelineOptions:
    landmarks: str = "mediapipe"  # "mediapipe", "dlib" or "face_alignment"
    fallback: str | None = "dlib"  # used when the first backend finds no face
    face_index: int = 0  # faces sorted by size, largest first
    working_side: int = DEFAULT_WORKING_SIDE
    fit: FitOptions = field(default_factory=FitOptions)


def default_embedding(model: FlameModel) -> Embedding | None:
    """The learned MediaPipe embedding shipped in assets/, or None where it is absent."""
    return load_embedding(DENSE_EMBEDDING, model) if DENSE_EMBEDDING.is_file() else None


def photo_confidence(rms_norm: float, face_px: float, yaw_rad: float) -> float:
    """Weight of a photo in a joint fit, 0..1: sharp large frontal faces that the model explains well count most.

    residual: 1 at a landmark RMS of 1 % of the face size, ½ at 2 %; size: full from 150 px;
    yaw: cos(yaw), floored so profile views still add something.
    """
    residual = 1.0 / (1.0 + (max(rms_norm - 0.01, 0.0) / 0.01) ** 2)
    size = min(1.0, face_px / 150.0)
    yaw = max(float(np.cos(yaw_rad)), 0.2)
    return float(residual * size * yaw)


def head_yaw(rotation: np.ndarray) -> float:
    return float(np.arctan2(-rotation[2, 0], np.hypot(rotation[0, 0], rotation[1, 0])))


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled")


def fit_photos(
    paths: Sequence[str | Path],
    model: FlameModel,
    options: PipelineOptions = PipelineOptions(),
    detector: LandmarkDetector | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    embedding: Embedding | None = None,
) -> FitResult:
    """Fit one head to photos of one person. A photo that fails is skipped with a warning when others
    succeed; if all fail, the first failure is raised. `embedding`: learned MediaPipe correspondences
    (see `default_embedding`)."""
    report = progress or (lambda fraction, message: None)
    own_detector = detector is None
    detector = detector or LandmarkDetector(options.landmarks, options.fallback)
    timings = {"load": 0.0, "detect": 0.0, "fit": 0.0}
    observations, detections, photos, warnings = [], [], [], []
    first_error: FacesmithError | None = None
    try:
        for i, path in enumerate(paths):
            _check_cancel(cancel)
            report(0.6 * i / len(paths), f"detecting {Path(path).name}")
            try:
                t0 = time.perf_counter()
                photo = load_photo(path, options.working_side)
                t1 = time.perf_counter()
                detection = detector.detect(photo, options.face_index)
                t2 = time.perf_counter()
            except FacesmithError as exc:
                first_error = first_error or exc
                warnings.append(f"skipped {exc}")
                continue
            timings["load"] += 1000 * (t1 - t0)
            timings["detect"] += 1000 * (t2 - t1)
            observations.append(Observation.from_face(detection.face, photo.to_original, photo.original_size))
            detections.append(detection)
            photos.append(photo)
    finally:
        if own_detector:
            detector.close()
    if not observations:
        raise first_error or FacesmithError("no photos given")
    _check_cancel(cancel)
    report(0.6, "fitting FLAME")
    t0 = time.perf_counter()
    solution, confidences = fit_person(model, observations, options.fit, embedding)
    timings["fit"] = 1000 * (time.perf_counter() - t0)
    report(0.95, "collecting the result")
    result = assemble(model, solution, observations, detections, [str(p.path) for p in photos], confidences)
    notes = [n for p in photos for n in p.notes]
    return dataclasses.replace(
        result,
        timings_ms={k: round(v, 2) for k, v in timings.items()},
        warnings=tuple(warnings + notes + list(model.warnings)),
    )


def fit_person(
    model: FlameModel, observations: list[Observation], options: FitOptions, embedding: Embedding | None = None
) -> tuple[FitSolution, list[float]]:
    """Fit each photo alone; with several, refit jointly (shared β) weighting photos by confidence."""
    singles = [fit_flame(model, [o], options, embedding=embedding) for o in observations]
    confidences = [
        photo_confidence(
            float(np.sqrt(np.mean(s.residuals_px[0] ** 2))) / o.face_size, o.face_size, head_yaw(s.photos[0].rotation)
        )
        for s, o in zip(singles, observations, strict=True)
    ]
    if len(observations) == 1:
        return singles[0], confidences
    weights = np.asarray(confidences) / max(confidences)
    beta = np.average(np.stack([s.shape for s in singles]), axis=0, weights=weights)
    start = FitSolution(beta, tuple(s.photos[0] for s in singles), (), ())
    return fit_flame(model, observations, options, weights, start, embedding), confidences


def assemble(
    model, solution: FitSolution, observations, detections: list[Detection], paths: list[str], confidences
) -> FitResult:
    photos = []
    for i, (state, obs, det) in enumerate(zip(solution.photos, observations, detections, strict=True)):
        pose = state.pose()
        out = flame_forward(model, solution.shape, state.expression, pose)
        model68 = state.camera.project(landmarks68(model, out)[0]) if model.has_landmarks68 else np.zeros((0, 2))
        names = solution.landmark_names[i]
        used = np.array([_observed_point(obs, n) for n in names])
        photos.append(PhotoFit(
            path=paths[i], image_size=obs.image_size, expression=state.expression, pose=pose, camera=state.camera,
            vertices=out.vertices[0], landmarks_px=used, landmark_names=names, residuals_px=solution.residuals_px[i],
            model_landmarks68_px=model68, face_size_px=obs.face_size, confidence=confidences[i], backend=det.backend,
            n_faces=det.n_faces, warnings=det.warnings,
        ))  # fmt: skip
    neutral = flame_forward(model, solution.shape).vertices[0]
    return FitResult(solution.shape, neutral, tuple(photos), model.description, model.source)


def _observed_point(obs: Observation, name: str) -> np.ndarray:
    scheme, index = name.split(":")
    return obs.points[int(index)] if scheme == "mp" else obs.ibug68()[int(index)]
