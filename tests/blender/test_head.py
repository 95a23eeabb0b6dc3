"""The rigged head in Blender: contents, pose correctives against FLAME, exports, headless commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesmith.inference.flame.forward import flame_forward
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.rig import quaternion

from ..conftest import SHARED
from .conftest import evaluated_vertices

FACES, BAD = SHARED / "data" / "faces", SHARED / "data" / "bad_inputs"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")


@pytest.fixture(scope="module")
def model_file(dev_model, tmp_path_factory):
    return save_model_npz(dev_model, tmp_path_factory.mktemp("model") / "dev_flame.npz")


@pytest.fixture(scope="module")
def converted(bpy, model_file, tmp_path_factory):
    """002_08 converted once through `facesmith reconstruct` (no preview: that is tested on its own)."""
    from facesmith.cli import main

    out = tmp_path_factory.mktemp("out")
    args = ["reconstruct", str(FACES / "002_08.jpg"), "-o", str(out), "--name", "head", "--no-preview"]
    assert main([*args, "--texture-size", "512", "--flame", str(model_file)]) == 0
    return out


def _open(bpy, path):
    bpy.ops.wm.open_mainfile(filepath=str(path))
    return bpy.data.objects["head"], bpy.data.objects["head_rig"]


def test_blend_holds_the_rigged_head(bpy, converted):
    head, rig = _open(bpy, converted / "head.blend")
    assert len(head.data.vertices) == 5023 and len(head.data.polygons) == 9976
    assert head.data.uv_layers.active is not None
    keys = head.data.shape_keys.key_blocks
    exp = [k for k in keys if k.name.startswith("exp_")]
    assert len(exp) >= 50 and all(k.slider_min <= -3 and k.slider_max >= 3 for k in exp)
    assert keys["fitted_expression"].value == 1.0 and "eyelid_L" in keys and "eyelid_R" in keys
    drivers = head.data.shape_keys.animation_data.drivers
    assert len(drivers) >= 36 and all(d.driver.is_valid and d.driver.is_simple_expression for d in drivers)
    bones = rig.data.bones
    assert {b.name for b in bones} == {"root", "neck", "head", "jaw", "eye_L", "eye_R"}
    assert bones["jaw"].parent.name == "head" and bones["head"].parent.name == "neck"
    assert {g.name for g in head.vertex_groups} == {"neck", "head", "jaw", "eye_L", "eye_R"}
    assert head.modifiers["Armature"].object == rig
    mat = head.data.materials[0]
    tex = mat.node_tree.nodes["Albedo"]
    assert tex.image is not None and tex.image.packed_file is not None
    disp = [n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeDisplacement"]
    assert disp and disp[0].outputs["Displacement"].is_linked and mat.displacement_method == "BOTH"
    eyes = [o for o in bpy.data.objects if o.parent_type == "BONE"]
    assert sorted(o.parent_bone for o in eyes) == ["eye_L", "eye_R"]
    assert bpy.context.scene.camera is not None


def test_posing_in_blender_reproduces_flame(bpy, converted, dev_model):
    head, rig = _open(bpy, converted / "head.blend")
    fitted = json.loads((converted / "head.json").read_text())
    beta = np.array(fitted["shape"])
    head.data.shape_keys.key_blocks["fitted_expression"].value = 0.0
    pose = np.zeros((5, 3))
    pose[0], pose[1], pose[2] = [0.1, 0.3, -0.05], [0.2, -0.25, 0.1], [0.25, 0.02, -0.03]
    pose[3] = pose[4] = [0.1, 0.2, 0.0]
    rig.pose.bones["root"].rotation_quaternion = (1, 0, 0, 0)
    for j, bone in enumerate(("neck", "head", "jaw", "eye_L", "eye_R")):
        rig.pose.bones[bone].rotation_quaternion = tuple(quaternion(pose[j]))
    blender = evaluated_vertices(bpy, head)
    flame = flame_forward(dev_model, beta, None, pose).vertices[0]
    assert np.linalg.norm(blender - flame, axis=1).max() < 1e-4  # metres: under 0.1 mm
    # Without the corrective drivers the same pose is off by millimetres: they are doing the work.
    for fcurve in head.data.shape_keys.animation_data.drivers:
        fcurve.mute = True
    for key in head.data.shape_keys.key_blocks:
        if key.name.startswith("pose_"):
            key.value = 0.0
    assert np.linalg.norm(evaluated_vertices(bpy, head) - flame, axis=1).max() > 1e-3


def test_fitted_pose_and_expression_match_the_fit(bpy, converted, dev_model):
    head, rig = _open(bpy, converted / "head.blend")
    fitted = json.loads((converted / "head.json").read_text())
    flame = flame_forward(
        dev_model, np.array(fitted["shape"]), np.array(fitted["expression"]), np.array(fitted["pose"])
    )
    # Bones sit at the neutral face's joints; FLAME moves joints with expression: a fraction of a millimetre.
    assert np.linalg.norm(evaluated_vertices(bpy, head) - flame.vertices[0], axis=1).max() < 1e-3


@pytest.mark.parametrize("fmt", ["glb", "fbx"])
def test_exports_round_trip(bpy, converted, fmt):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if fmt == "glb":
        bpy.ops.import_scene.gltf(filepath=str(converted / "head.glb"))
    else:
        bpy.ops.import_scene.fbx(filepath=str(converted / "head.fbx"))
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.name == "head"]
    armatures = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(meshes) == 1 and len(armatures) == 1
    # The mouth (teeth, gums, tongue, socket) and the lashes travel with the rig: skinned, with ARKit morph targets.
    mouth = [o for o in bpy.data.objects if o.type == "MESH" and "mouth" in o.name]
    lashes = [o for o in bpy.data.objects if o.type == "MESH" and "lashes" in o.name]
    assert len(mouth) == 1 and len(lashes) == 1
    assert "jawOpen" in mouth[0].data.shape_keys.key_blocks and "jaw" in mouth[0].vertex_groups
    assert "eyeBlinkLeft" in lashes[0].data.shape_keys.key_blocks
    keys = meshes[0].data.shape_keys.key_blocks
    assert len([k for k in keys if k.name.startswith("exp_")]) >= 50
    assert len([k for k in keys if k.name.startswith("pose_")]) == 36
    assert {"neck", "head", "jaw", "eye_L", "eye_R"} <= {b.name for b in armatures[0].data.bones}
