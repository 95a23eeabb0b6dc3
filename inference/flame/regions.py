"""Regions of the FLAME mesh used by several stages."""

from __future__ import annotations

import numpy as np

from .forward import flame_forward, landmarks68
from .model import FlameModel

NOSE_TIP_IBUG = 30
FACE_RADIUS_M = 0.095  # NoW crops scans to this radius around the nose tip


def face_region(model: FlameModel) -> np.ndarray:
    """Boolean mask of face vertices: within 95 mm of the template's nose tip, eyeballs excluded."""
    out = flame_forward(model)
    tip = landmarks68(model, out)[0, NOSE_TIP_IBUG]
    near = np.linalg.norm(model.v_template - tip, axis=1) < FACE_RADIUS_M
    eyeballs = model.lbs_weights[:, 3:5].sum(axis=1) > 0.5
    return near & ~eyeballs
