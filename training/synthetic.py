"""Synthetic heads, the landmarks a detector would see of them, and per-vertex photo colours for renders:
for tests, benchmarks and learning correspondences."""

from __future__ import annotations

import numpy as np

from ..inference import flame
from ..inference.camera import Camera
from ..inference.fit import Observation, mediapipe_embedding, pupil_vertices
from ..inference.flame.model import FlameModel
from ..inference.landmarks.detect import MEDIAPIPE_IRIS_CENTRES, MEDIAPIPE_TO_IBUG68
from ..inference.landmarks.embedding import Embedding
from ..inference.result import PhotoFit
from ..inference.texture.maps import FALLBACK_SKIN_SRGB, srgb_to_linear


def sample_head(model: FlameModel, rng: np.random.Generator, image_side: int = 512, max_yaw_deg: float = 35.0) -> dict:
    """β and ψ from the prior (ψ at 0.7 σ: everyday expressions), head pose, jaw, gaze and a camera that
    puts a 210–360 px face near the centre of a square image."""
    pose = np.zeros((5, 3))
    pose[0] = np.radians([rng.normal(0, 8), rng.uniform(-max_yaw_deg, max_yaw_deg), rng.normal(0, 4)])
    pose[flame.JAW, 0] = rng.uniform(0.0, 0.25)
    gaze = rng.normal(0, 0.1, 2)
    pose[3] = pose[4] = [gaze[0], gaze[1], 0.0]
    scale = rng.uniform(1400, 2400)  # px per metre
    centre = image_side / 2 + rng.normal(0, 15, 2)
    return {
        "shape": rng.normal(size=model.n_shape),
        "expression": rng.normal(size=model.n_expr) * 0.7,
        "pose": pose,
        "camera": Camera("orthographic", np.array([scale, centre[0], centre[1]])),
    }


def observe(
    model: FlameModel,
    head: dict,
    rng: np.random.Generator,
    noise_px: float = 1.5,
    outliers: int = 3,
    image_side: int = 512,
    embedding: Embedding | None = None,
) -> Observation:
    """MediaPipe-layout landmarks (478, 2) of a posed head: the embedded points (FLAME's 105 and those of
    `embedding`), the 68-point contour and the iris centres projected, plus Gaussian noise and `outliers`
    points moved 15–30 px. Points with no embedding stay NaN: the fit never reads them."""
    out = flame.flame_forward(model, head["shape"], head["expression"], head["pose"])
    cam = head["camera"]
    points = np.full((478, 2), np.nan)
    emb = mediapipe_embedding(model, embedding)
    points[emb.indices] = cam.project(flame.surface_points(out.vertices, model.faces, emb.faces, emb.bary)[0])
    # The jaw line last: those MediaPipe points are read as FLAME's yaw-dependent contour.
    contour = MEDIAPIPE_TO_IBUG68[:17]
    points[contour] = cam.project(flame.landmarks68(model, out)[0, :17])
    inner = MEDIAPIPE_TO_IBUG68[17:]
    points[inner] = np.where(np.isnan(points[inner]), cam.project(flame.landmarks68(model, out)[0, 17:]), points[inner])
    iris = list(MEDIAPIPE_IRIS_CENTRES)
    points[iris] = cam.project(out.vertices[0][pupil_vertices(model)])
    points += rng.normal(0, noise_px, points.shape)
    used = np.r_[emb.indices, MEDIAPIPE_TO_IBUG68[:17]]
    bad = rng.choice(used, outliers, replace=False)
    points[bad] += rng.uniform(15, 30, (outliers, 2)) * rng.choice([-1, 1], (outliers, 2))
    return Observation(points, "mediapipe478", (image_side, image_side), points[iris])


def vertex_colours(photo_rgb: np.ndarray, fit: PhotoFit, scale: float, faces: np.ndarray) -> np.ndarray:
    """Linear RGB per vertex sampled from the photo where the fitted mesh faces the camera; elsewhere the
    median of the sampled skin. A topology-following colouring for test renders (not the UV albedo)."""
    uv = fit.camera.project(fit.vertices) / scale  # working-image pixels
    normals = flame.vertex_normals(fit.vertices, faces)
    h, w = photo_rgb.shape[:2]
    seen = (normals[:, 2] > 0.3) & (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
    colours = np.empty((len(uv), 3), np.float32)
    px = np.round(uv[seen]).astype(int)
    colours[seen] = photo_rgb[px[:, 1], px[:, 0]] / 255.0
    colours[~seen] = np.median(colours[seen], axis=0) if seen.any() else FALLBACK_SKIN_SRGB
    return srgb_to_linear(colours)
