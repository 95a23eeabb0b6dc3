"""Fitting FLAME to 2D landmarks: what is matched (`targets`), the least-squares problem and its Jacobians
(`problem`), the solver (`solver`), gaze from the irises (`gaze`), several photos of one person (`person`), the
artist's pins (`pins`)."""

from ..options import FitOptions
from .gaze import fit_gaze, pupil_vertices
from .person import fit_person, head_yaw, photo_confidence
from .pins import check_pins, solve_pins
from .problem import FitSolution, PhotoState, Problem
from .rotations import rotation_to_axis_angle
from .solver import fit_flame, initial_state
from .targets import Observation, Pin, mediapipe_embedding

__all__ = [
    "FitOptions", "FitSolution", "Observation", "PhotoState", "Pin", "Problem", "check_pins", "fit_flame", "fit_gaze",
    "fit_person", "head_yaw", "initial_state", "mediapipe_embedding", "photo_confidence", "pupil_vertices",
    "rotation_to_axis_angle", "solve_pins",
]  # fmt: skip
