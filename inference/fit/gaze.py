"""Gaze: the eye rotation that puts FLAME's pupils on the detected iris centres."""

from __future__ import annotations

import numpy as np

from ..flame.model import FlameModel
from .problem import PhotoState, Problem
from .rotations import rotation
from .targets import Observation, vertex_surface_points

GAZE_LIMIT = 0.6  # radians, each axis


def pupil_vertices(model: FlameModel) -> np.ndarray:
    """The front-most vertex of each eyeball (subject's right, then left), as MediaPipe orders iris centres."""
    out = []
    for joint in (4, 3):
        eyeball = np.flatnonzero(model.lbs_weights[:, joint] > 0.99)
        out.append(eyeball[np.argmax(model.v_template[eyeball, 2])] if eyeball.size else -1)
    return np.array(out)


def fit_gaze(problem: Problem, beta: np.ndarray, state: PhotoState, obs: Observation) -> np.ndarray:
    """Pitch and yaw (radians, shared by both eyes) that put the pupils on the detected iris centres."""
    model, fn = problem.model, problem.fn
    tips = pupil_vertices(model)
    if obs.iris is None or (tips < 0).any():
        return np.zeros(2)
    tri, bary = vertex_surface_points(np.asarray(model.faces), tips)
    pupils, root = fn.points(fn.prepare(tri, bary), beta, state.expression, state.jaw, jacobian=False)
    eyes = fn.joints(beta, state.expression)[[4, 3]]  # neck at rest: the eye joints do not move
    rot = state.rotation  # the eyes' parent (neck) turns with the global rotation only
    centres = (eyes - root) @ rot.T + root
    offsets = (pupils - eyes) @ rot.T

    def residual(g: np.ndarray) -> np.ndarray:
        # The eye turns in its parent's frame: offset' = R R_eye Rᵀ offset.
        turn = rot @ rotation(np.array([g[0], g[1], 0.0])) @ rot.T
        return (state.camera.project(centres + offsets @ turn.T) - obs.iris).ravel() / obs.face_size

    g = np.zeros(2)
    for _ in range(8):
        r = residual(g)
        jac = np.stack([(residual(g + e) - r) / 1e-5 for e in np.eye(2) * 1e-5], axis=1)
        step = np.linalg.solve(jac.T @ jac + 1e-4 * np.eye(2), -jac.T @ r)
        g = np.clip(g + step, -GAZE_LIMIT, GAZE_LIMIT)
        if np.abs(step).max() < 1e-5:
            break
    return g
