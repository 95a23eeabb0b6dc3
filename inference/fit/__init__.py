"""Fitting FLAME to 2D landmarks: what is matched (`targets`), the least-squares problem and its Jacobians
(`problem`), the solver (`solver`), gaze from the irises (`gaze`), several photos of one person (`person`)."""

from ..options import FitOptions
from .gaze import fit_gaze, pupil_vertices
from .person import fit_person, head_yaw, photo_confidence
from .problem import FitSolution, PhotoState, Problem
from .rotations import rotation_to_axis_angle
from .solver import fit_flame, initial_state
from .targets import Observation, mediapipe_embedding

__all__ = [
    "FitOptions", "FitSolution", "Observation", "PhotoState", "Problem", "fit_flame", "fit_gaze", "fit_person",
    "head_yaw", "initial_state", "mediapipe_embedding", "photo_confidence", "pupil_vertices",
    "rotation_to_axis_angle",
]  # fmt: skip
