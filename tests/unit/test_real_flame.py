"""With a real FLAME download (FACESMITH_FLAME=flame2023_Open.pkl or generic_model.pkl): loads and poses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from facesmith.inference.flame.forward import flame_forward
from facesmith.inference.flame.paths import ModelChoice, load_model

pytestmark = [
    pytest.mark.needs_flame,
    pytest.mark.skipif(not os.environ.get("FACESMITH_FLAME"), reason="set FACESMITH_FLAME to a real FLAME file"),
]


def test_real_flame_loads_full_size():
    model = load_model(ModelChoice(Path(os.environ["FACESMITH_FLAME"]), "FACESMITH_FLAME"))
    assert (model.n_vertices, model.n_faces, model.n_joints) == (5023, 9976, 5)
    assert model.n_shape >= 100 and model.n_expr >= 50
    out = flame_forward(model, np.ones(model.n_shape) * 0.5, np.ones(model.n_expr) * 0.5, np.full((5, 3), 0.1))
    assert np.isfinite(out.vertices).all()
