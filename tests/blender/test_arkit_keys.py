"""The reconstructed head carries ICT-FaceKit's ARKit blendshapes as shape keys (inference/arkit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.arkit import ARKIT_NAMES
from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED
from .conftest import evaluated_vertices

PHOTO = SHARED / "data" / "faces" / "002_03.jpg"
pytestmark = pytest.mark.skipif(not PHOTO.is_file(), reason=f"needs {PHOTO}")


@pytest.fixture(scope="module")
def blend(bpy, dev_model, tmp_path_factory):
    from facesmith.cli import main

    model_file = save_model_npz(dev_model, tmp_path_factory.mktemp("model") / "dev_flame.npz")
    out = tmp_path_factory.mktemp("out")
    args = ["reconstruct", str(PHOTO), "-o", str(out), "--no-preview", "--texture-size", "512"]
    assert main([*args, "--flame", str(model_file)]) == 0
    (path,) = out.glob("*.blend")
    return path


def test_arkit_shape_keys_and_jaw_open(bpy, blend):
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    (head,) = [
        o
        for o in bpy.data.objects
        if o.type == "MESH" and o.data.shape_keys and "jawOpen" in o.data.shape_keys.key_blocks
    ]
    keys = head.data.shape_keys.key_blocks
    arkit = [k for k in keys if k.name in ARKIT_NAMES]
    assert [k.name for k in arkit] == [n for n in ARKIT_NAMES if n != "tongueOut"]
    assert all(k.slider_min == 0.0 and k.slider_max == 1.0 and k.value == 0.0 for k in arkit)
    rest = evaluated_vertices(bpy, head)
    keys["jawOpen"].value = 1.0
    opened = evaluated_vertices(bpy, head)
    keys["jawOpen"].value = 0.0
    # The vertex that moves most (the chin) goes down by centimetres: world Z, whatever the rig's rotation.
    moved = opened - rest
    tip = np.argmax(np.linalg.norm(moved, axis=1))
    assert -(moved[tip] @ _up(bpy, head)) > 0.02
    assert np.linalg.norm(moved, axis=1).max() < 0.06
    assert rest[tip] @ _up(bpy, head) < np.percentile(rest @ _up(bpy, head), 30)  # in the lower part of the head


def _up(bpy, obj) -> np.ndarray:
    """World up (Z) in the object's local frame: where the mesh's vertex coordinates live."""
    m = np.array(obj.matrix_world.to_3x3())
    up = np.linalg.inv(m) @ np.array([0.0, 0.0, 1.0])
    return up / np.linalg.norm(up)
