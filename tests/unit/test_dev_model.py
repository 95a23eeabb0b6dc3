"""The development model from ../shared/flame, and a real-layout FLAME pickle loading the same."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facesmith.inference import flame
from facesmith.inference.errors import ModelFileError
from facesmith.inference.flame.dev_model import PARTS, build_dev_model
from facesmith.inference.flame.io import load_flame, save_model_npz
from facesmith.inference.flame.model import model_arrays
from facesmith.inference.flame.paths import ModelChoice, load_model

from ..conftest import FLAME_PARTS


def test_dev_model_sizes(dev_model):
    info = dev_model.info()
    assert (info["vertices"], info["faces"], info["joints"]) == (5023, 9976, 5)
    assert (info["shape_components"], info["expression_components"]) == (50, 50)
    assert info["development_model"] and info["description"] == "development model (FLAME 2023, 50/50 components)"
    assert info["uv"] and info["landmarks68"] and info["landmarks_mediapipe"] == 105 and info["eyelids"]
    assert dev_model.uv_coords.min() >= 0 and dev_model.uv_coords.max() <= 1


def test_joints_are_plausible(flame_model):
    joints = flame_model.j_regressor @ flame_model.v_template
    # neck below the eyes, eyes symmetric about x = 0 (metres)
    assert joints[1, 1] < joints[3, 1] and joints[1, 1] < joints[4, 1]
    assert joints[3, 0] * joints[4, 0] < 0 and abs(joints[3, 0] + joints[4, 0]) < 1e-3
    assert 0.05 < abs(joints[3, 0] - joints[4, 0]) < 0.08  # interpupillary distance


def _copy_parts(dst):
    for rel in PARTS:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FLAME_PARTS / rel, dst / rel)


@pytest.mark.skipif(not FLAME_PARTS.is_dir(), reason="needs ../shared/flame")
def test_changed_or_missing_part_is_named(tmp_path):
    _copy_parts(tmp_path)
    target = tmp_path / "sarasti/flame_weights.bin"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"flame_weights\.bin: SHA-256 does not match"):
        build_dev_model(tmp_path)
    target.write_bytes(bytes(data[:-4]))
    with pytest.raises(ModelFileError, match=r"flame_weights\.bin: size 100456 bytes, expected 100460"):
        build_dev_model(tmp_path)
    target.unlink()
    with pytest.raises(ModelFileError, match=r"flame_weights\.bin: file not found"):
        build_dev_model(tmp_path)


def test_official_layout_pickle_loads_the_same(tmp_path, dev_model, write_official_pickle):
    path = write_official_pickle(tmp_path / "flame2023.pkl", model_arrays(dev_model))
    model = load_flame(path)
    assert model.description == "FLAME 2023" and not model.is_development
    assert (model.n_vertices, model.n_faces, model.n_joints, model.n_shape, model.n_expr) == (5023, 9976, 5, 50, 50)
    rng = np.random.default_rng(0)
    args = rng.normal(size=50), rng.normal(size=50), rng.normal(scale=0.2, size=(5, 3))
    np.testing.assert_allclose(
        flame.flame_forward(model, *args).vertices, flame.flame_forward(dev_model, *args).vertices, atol=1e-12
    )


@pytest.mark.skipif(not FLAME_PARTS.is_dir(), reason="needs ../shared/flame")
def test_pickle_takes_topology_from_files_beside_it(tmp_path, dev_model, write_official_pickle):
    path = write_official_pickle(tmp_path / "flame2023.pkl", model_arrays(dev_model))
    for rel in (
        "deca/head_template.obj",
        "ringnet/flame_static_embedding.pkl",
        "ringnet/flame_dynamic_embedding.npy",
        "metrical_tracker/mediapipe_landmark_embedding.npz",
    ):
        shutil.copy(FLAME_PARTS / rel, tmp_path)
    model = load_model(ModelChoice(path, "--flame"))
    assert model.has_landmarks68 and model.has_mediapipe and model.uv_coords is not None
    assert any("eyelid_left" in w for w in model.warnings)  # no eyelid files beside it: said, not hidden
    out = flame.flame_forward(model)
    np.testing.assert_allclose(
        flame.landmarks68(model, out), flame.landmarks68(dev_model, flame.flame_forward(dev_model))
    )


def test_pickle_borrows_topology_from_dev_model(tmp_path, dev_model, write_official_pickle):
    path = write_official_pickle(tmp_path / "flame2023.pkl", model_arrays(dev_model))
    donor = save_model_npz(dev_model, tmp_path / "dev" / "dev_flame.npz")
    model = load_model(ModelChoice(path, "FACESMITH_FLAME"), donor=donor)
    assert model.has_landmarks68 and model.eyelid_left is not None
    assert any("taken from" in w for w in model.warnings)
    assert not model.is_development
