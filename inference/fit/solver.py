"""Solving the landmark fit: a rigid POS start, then robust Levenberg–Marquardt (IRLS Huber weights)."""

from __future__ import annotations

import numpy as np

from ..camera import Camera
from ..flame.model import FlameModel
from ..landmarks.embedding import Embedding
from ..options import DEFAULTS, FitOptions
from .gaze import fit_gaze
from .problem import FitSolution, PhotoState, Problem
from .targets import Observation


def huber_weights(errors: np.ndarray, k: float) -> np.ndarray:
    """IRLS weights of the Huber loss for errors in units of sigma: 1 inside k, k / error beyond."""
    return np.where(errors <= k, 1.0, k / np.maximum(errors, 1e-12))


def solve(
    problem: Problem, beta, states, iterations: int, free_shape: bool, rigid: bool, tolerance: float = 1e-5, extra=None
):
    """Levenberg–Marquardt; Huber weights are refreshed from each accepted step's residuals (IRLS). `extra`, when
    given, adds its rows: `extra.residuals(beta, states, jacobian)` -> rows (and their Jacobian over the same
    columns), its own robust weights refreshed when the Jacobian is asked for (photometric.PhotoTerm)."""
    mu = 1e-3
    free = problem.free_columns(len(states), free_shape, rigid)
    _, errors = problem.residuals(beta, states, None, False, free_shape, rigid)
    for _ in range(iterations):
        robust = [huber_weights(e, problem.opt.robust_k) for e in errors]
        if extra is None:  # landmarks (and pins) only: JᵀJ photo by photo, never the whole Jacobian
            jtj, jtr, cost = problem.normal_equations(beta, states, robust, free_shape, rigid)
            jtj, jtr = jtj[np.ix_(free, free)], jtr[free]
        else:
            r, jac, _ = problem.residuals(beta, states, robust, True, free_shape, rigid)
            r_extra, jac_extra = extra.residuals(beta, states, True)
            r, jac = np.concatenate([r, r_extra]), np.concatenate([jac, jac_extra])
            cost = r @ r
            jf = jac[:, free]
            jtj, jtr = jf.T @ jf, jf.T @ r
        new_cost = cost
        for _ in range(8):
            delta = np.zeros(len(free))
            delta[free] = -np.linalg.solve(jtj + mu * (np.diag(np.diag(jtj)) + np.eye(len(jtj))), jtr)
            nb, ns = problem.apply(beta, states, delta, free_shape)
            r_new, new_errors = problem.residuals(nb, ns, robust, False, free_shape, rigid)
            if extra is not None:
                r_new = np.concatenate([r_new, extra.residuals(nb, ns, False)])
            if r_new @ r_new < cost:
                beta, states, errors, new_cost, mu = nb, ns, new_errors, r_new @ r_new, max(mu / 3, 1e-7)
                break
            mu *= 4
        if cost - new_cost < tolerance * cost:
            break
    return beta, states


def initial_state(problem: Problem, p: int) -> PhotoState:
    """Rigid start: scaled-orthographic pose of the mean face from the static correspondences (POS)."""
    model, obs, options, targets = problem.model, problem.obs[p], problem.opt, problem.targets[p]
    fn = problem.fn
    pts3, root = fn.points(problem.static_ops[p], np.zeros(fn.ns), np.zeros(fn.ne), np.zeros(3), jacobian=False)
    img = targets.points.astype(np.float64)
    # Least-squares affine camera [u, -v] = A @ X + b, then its nearest scaled rotation.
    design = np.hstack([pts3, np.ones((len(pts3), 1))])
    rhs = np.stack([img[:, 0], -img[:, 1]], axis=1)
    sol, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    a = sol[:3].T  # (2, 3)
    r1, r2 = a[0], a[1]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2.0
    r1, r2 = r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2)
    r3 = np.cross(r1, r2)
    u, _, vt = np.linalg.svd(np.stack([r1, r2, r3 / max(np.linalg.norm(r3), 1e-9)]))
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        rot = u @ np.diag([1, 1, -1]) @ vt
    # The rotation acts about the root joint: fold that into the translation.
    centre3 = pts3.mean(0)
    world_c = (centre3 - root) @ rot.T + root
    target_c = img.mean(0)
    tx, ty = target_c[0] - s * world_c[0], target_c[1] + s * world_c[1]
    ne = min(options.n_expr, model.n_expr)
    cam = Camera("orthographic", np.array([s, tx, ty]))
    if options.camera == "perspective":
        w, h = obs.image_size
        focal = options.focal_factor * max(w, h)
        dist = focal / s
        # pick (tx, ty) so that the face centre projects where the orthographic camera put it
        cx, cy = w / 2.0, h / 2.0
        ptx = (target_c[0] - cx) / focal * dist - world_c[0]
        pty = -(target_c[1] - cy) / focal * dist - world_c[1]
        cam = Camera("perspective", np.array([ptx, pty, dist + world_c[2]]), focal, (cx, cy))
    elif options.camera == "weak_perspective":
        cam = Camera("weak_perspective", cam.params)
    return PhotoState(np.zeros(ne), rot, np.zeros(3), cam)


def fit_flame(
    model: FlameModel,
    observations: list[Observation],
    options: FitOptions = DEFAULTS.fit,
    photo_weights: np.ndarray | None = None,
    start: FitSolution | None = None,
    embedding: Embedding | None = None,
) -> FitSolution:
    """Fit shared β and per-photo ψ, pose and camera to the observations.

    `embedding` adds learned MediaPipe correspondences (see mp_embedding) to FLAME's 105."""
    problem = Problem(model, observations, options, photo_weights, embedding)
    if start is None:
        states = [initial_state(problem, p) for p in range(len(observations))]
        beta = np.zeros(problem.ns)
        beta, states = solve(problem, beta, states, options.rigid_iterations, free_shape=False, rigid=True)
    else:
        beta, states = start.shape[: problem.ns].copy(), [s.copy() for s in start.photos]
    beta, states = solve(problem, beta, states, options.iterations, free_shape=True, rigid=False)
    if options.fit_gaze:
        for st, o in zip(states, observations, strict=True):
            st.gaze = fit_gaze(problem, beta, st, o)
    residuals, names = problem.landmark_residuals_px(beta, states)
    return FitSolution(beta, tuple(states), tuple(residuals), tuple(names))
