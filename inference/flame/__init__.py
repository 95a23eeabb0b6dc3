"""The FLAME model layer: arrays and their checks (`model`), loading files safely (`io`, `safe_pickle`,
`topology`, `paths`, `dev_model`), the forward pass (`forward`, re-exported here) and mesh regions."""

from .forward import (
    DYNAMIC_YAW_LIMIT,
    JAW,
    NECK,
    FlameOutput,
    contour_rows,
    flame_forward,
    landmarks68,
    landmarks_mediapipe,
    rodrigues,
    surface_points,
    vertex_normals,
)
from .model import JOINT_NAMES, N_JOINTS, FlameModel

__all__ = [
    "DYNAMIC_YAW_LIMIT", "JAW", "JOINT_NAMES", "N_JOINTS", "NECK", "FlameModel", "FlameOutput", "contour_rows",
    "flame_forward", "landmarks68", "landmarks_mediapipe", "rodrigues", "surface_points", "vertex_normals",
]  # fmt: skip
