"""One person, several photos: each fitted alone, then jointly with a shared shape weighted by confidence
(Deng et al. 2019)."""

from __future__ import annotations

import numpy as np

from ..flame.model import FlameModel
from ..landmarks.embedding import Embedding
from ..options import FitOptions
from .problem import FitSolution
from .solver import fit_flame
from .targets import Observation


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
