"""Re-solving a fit with pins (targets.Pin): the artist's corrections join the landmark problem as landmarks of
their own σ (FitOptions.pin_sigma): shape shared across photos, expression, pose and camera per photo. A re-solve
starts from the current head, so a drag costs a few Levenberg–Marquardt steps (FitOptions.pin_iterations)."""

from __future__ import annotations

from collections.abc import Sequence

from .gaze import fit_gaze
from .problem import FitSolution, Problem
from .solver import solve
from .targets import Pin, pin_problem


def check_pins(pins: Sequence[Pin], n_faces: int, n_photos: int) -> None:
    """Raise ValueError naming the first pin that cannot be used, and why."""
    for i, pin in enumerate(pins):
        why = pin_problem(pin, n_faces, n_photos)
        if why:
            raise ValueError(f"pin {i}: {why}")


def solve_pins(problem: Problem, start: FitSolution, pins: Sequence[Pin]) -> FitSolution:
    """The fit of `problem`'s landmarks and `pins`, from `start` (the current head: its β and per-photo states).

    `problem` is the landmark problem of the photos (any pins it holds are replaced by `pins`); it is not
    changed, so an interactive session builds it once and calls this on every drag."""
    opt = problem.opt
    check_pins(pins, len(problem.model.faces), len(problem.obs))
    pinned = problem.with_pins(pins)
    beta, states = start.shape[: pinned.ns].copy(), [s.copy() for s in start.photos]
    beta, states = solve(pinned, beta, states, opt.pin_iterations, free_shape=True, rigid=False)
    if opt.fit_gaze:  # the head may have turned: the pupils are put back on the irises
        for st, obs in zip(states, pinned.obs, strict=True):
            st.gaze = fit_gaze(pinned, beta, st, obs)
    residuals, names = pinned.landmark_residuals_px(beta, states)
    pin_residuals = pinned.pin_residuals_px(beta, states)
    return FitSolution(beta, tuple(states), tuple(residuals), tuple(names), tuple(pin_residuals))
