"""The reconstructed head carries ICT-FaceKit's ARKit blendshapes as shape keys (inference/arkit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.arkit import ARKIT_NAMES
from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED
from .conftest import evaluated_vertices, head_object

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
    head = head_object(bpy)
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


def test_a_live_link_face_csv_animates_the_head(bpy, blend, tmp_path):
    """`facesmith animate-arkit`: a take at 60 fps (Live Link Face's layout) keyed onto the head in a 30 fps
    scene: the weights at each frame, the jaw opening with JawOpen, the photo's expression off."""
    from facesmith.cli import main

    names = ["EyeBlinkLeft", "JawOpen", "MouthSmileRight", "TongueOut", "EyeLookOutLeft"]
    rows = ["Timecode,BlendShapeCount," + ",".join(names) + ",HeadYaw,HeadPitch,HeadRoll"]
    for i in range(61):  # one second: 00:00:10:00 .. 00:00:11:00
        s, ff = divmod(600 + i, 60)
        rows.append(f"00:00:{s:02d}:{ff:02d}.000,61,{i / 60:.4f},{(i / 60) ** 2:.4f},0.5,0.0,{i / 60:.4f},0.1,0.0,0.0")
    take = tmp_path / "take.csv"
    take.write_text("\n".join(rows) + "\n")
    out = tmp_path / "animated.blend"
    assert main(["animate-arkit", str(take), "--rig", str(blend), "-o", str(out)]) == 0
    assert main(["animate-arkit", str(take), "--rig", str(blend), "-o", str(out)]) == 1  # exists: refused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animated.blend", "take.csv"]  # no .blend1 left beside
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    head = head_object(bpy)
    keys = head.data.shape_keys.key_blocks
    fps = scene.render.fps / scene.render.fps_base
    assert (scene.frame_start, scene.frame_end) == (1, int(np.ceil(1 + fps)))
    scene.frame_set(1)
    closed = evaluated_vertices(bpy, head)
    assert keys["fitted_expression"].value == 0.0 and keys["jawOpen"].value == pytest.approx(0.0, abs=1e-4)
    jaw = head.parent.pose.bones["jaw"].rotation_quaternion  # the photo's jaw off too: jawOpen holds the jaw
    assert tuple(jaw) == pytest.approx((1.0, 0.0, 0.0, 0.0), abs=1e-6)
    half = 1 + 0.5 * fps
    scene.frame_set(int(half), subframe=half - int(half))
    assert keys["eyeBlinkLeft"].value == pytest.approx(0.5, abs=0.02)
    assert keys["jawOpen"].value == pytest.approx(0.25, abs=0.02)
    assert keys["mouthSmileRight"].value == pytest.approx(0.5, abs=1e-3)
    scene.frame_set(int(1 + fps))
    opened = evaluated_vertices(bpy, head)
    assert np.linalg.norm(opened - closed, axis=1).max() > 0.02  # jawOpen at 1: centimetres
    eye = head.parent.pose.bones["eye_L"].rotation_quaternion  # EyeLookOutLeft at 1 turns the eyeball, not only lids
    assert 2 * np.degrees(np.arccos(min(1.0, abs(eye.w)))) > 20 and eye.y > 0.2
    # The teeth and tongue play the take from their own keyframes, as exporters see them (drivers do not export).
    mouth = bpy.data.objects[f"{head.name}_mouth"].data.shape_keys
    scene.frame_set(1)
    for driver in mouth.animation_data.drivers:
        driver.mute = True
    scene.frame_set(int(half), subframe=half - int(half))
    assert mouth.key_blocks["jawOpen"].value == pytest.approx(0.25, abs=0.02)


def test_a_csv_that_is_not_a_take_fails_in_one_line(bpy, blend, tmp_path, capsys):
    from facesmith.cli import main

    bad = tmp_path / "notes.csv"
    bad.write_text("time,value\n1,2\n")
    assert main(["animate-arkit", str(bad), "--rig", str(blend), "-o", str(tmp_path / "x.blend")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "Timecode" in err[0]
    assert not (tmp_path / "x.blend").exists()


def test_the_photo_expression_shown_as_arkit_weights(bpy, dev_model, tmp_path):
    """`--fitted-expression arkit`: the head shows the photo's expression through the ARKit keys (the weights the
    JSON lists), fitted_expression off, the jaw bone at rest; Neutral / Fitted switch them off and on."""
    import json

    from facesmith.addon.build_mesh import show_fitted
    from facesmith.cli import main

    model_file = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    photo = PHOTO.with_name("002_08.jpg")  # smiling
    args = ["reconstruct", str(photo), "-o", str(tmp_path), "--no-preview", "--no-fbx", "--texture-size", "512"]
    assert main([*args, "--fitted-expression", "arkit", "--flame", str(model_file)]) == 0
    rig = json.loads((tmp_path / "002_08.json").read_text())["rig"]
    assert rig["fitted_expression_as"] == "arkit" and 0 < rig["arkit_rms_mm"] < 3
    weights = rig["arkit_weights"]
    assert weights["mouthSmileLeft"] > 0.2 and weights["mouthSmileRight"] > 0.2
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "002_08.blend"))
    head = head_object(bpy)
    keys = head.data.shape_keys.key_blocks
    assert keys["fitted_expression"].value == 0.0
    for name, w in weights.items():
        assert keys[name].value == pytest.approx(w, abs=1e-4), name
    jaw = head.parent.pose.bones["jaw"]
    assert np.allclose(tuple(jaw.rotation_quaternion), (1, 0, 0, 0))
    show_fitted(head, False)
    assert all(keys[n].value == 0.0 for n in weights) and keys["fitted_expression"].value == 0.0
    show_fitted(head, True)
    assert keys["mouthSmileLeft"].value == pytest.approx(weights["mouthSmileLeft"], abs=1e-4)


def test_teeth_tongue_and_lashes_follow_the_head(bpy, blend):
    """The mouth and lash meshes: skinned to the rig, their keys driven by the head's: the head's jawOpen takes the
    lower teeth down (the upper stay), the jaw bone carries them too, and the lashes close with eyeBlink."""
    from mathutils import Quaternion

    bpy.ops.wm.open_mainfile(filepath=str(blend))
    head = head_object(bpy)
    mouth, lashes = (bpy.data.objects[f"{head.name}_{part}"] for part in ("mouth", "lashes"))
    assert mouth.parent == head.parent and lashes.parent == head.parent
    materials = {m.name.removeprefix(f"{head.name}_") for m in mouth.data.materials}
    assert materials == {"mouth_socket", "gums_and_tongue", "teeth"}
    keys = head.data.shape_keys.key_blocks
    keys["fitted_expression"].value = 0.0
    jaw_bone = head.parent.pose.bones["jaw"]
    jaw_bone.rotation_quaternion = (1, 0, 0, 0)
    rest = evaluated_vertices(bpy, mouth)
    up = _up(bpy, mouth)
    jaw_group = mouth.vertex_groups["jaw"].index
    on_jaw = np.array([any(g.group == jaw_group and g.weight > 0.99 for g in v.groups) for v in mouth.data.vertices])
    off_jaw = np.array([all(g.group != jaw_group for g in v.groups) for v in mouth.data.vertices])
    teeth = next(i for i, m in enumerate(mouth.data.materials) if m.name.endswith("_teeth"))
    upper_teeth = np.zeros(len(off_jaw), bool)
    upper_teeth[[i for p in mouth.data.polygons if p.material_index == teeth for i in p.vertices]] = True
    upper_teeth &= off_jaw
    keys["jawOpen"].value = 1.0
    opened = evaluated_vertices(bpy, mouth) - rest
    keys["jawOpen"].value = 0.0
    assert -(opened[on_jaw] @ up).mean() > 0.015
    assert upper_teeth.sum() > 100 and np.linalg.norm(opened[upper_teeth], axis=1).max() < 1e-4  # every one stays
    jaw_bone.rotation_quaternion = tuple(Quaternion((1, 0, 0), 0.3))
    turned = evaluated_vertices(bpy, mouth) - rest
    jaw_bone.rotation_quaternion = (1, 0, 0, 0)
    assert np.linalg.norm(turned[on_jaw], axis=1).min() > 0.003
    lash_rest = evaluated_vertices(bpy, lashes)
    keys["eyeBlinkLeft"].value = 1.0
    blinked = evaluated_vertices(bpy, lashes) - lash_rest
    keys["eyeBlinkLeft"].value = 0.0
    assert np.linalg.norm(blinked, axis=1).max() > 0.004  # the left lashes close with the lid
    # The lashes fade from root to tip: the material's alpha reads the mesh's per-vertex opacity.
    opacity = np.empty(len(lashes.data.vertices), np.float32)
    lashes.data.attributes["lash_opacity"].data.foreach_get("value", opacity)
    assert opacity.max() > 0.8 and opacity.min() < 0.05
    (material,) = lashes.data.materials
    used = {n.attribute_name for n in material.node_tree.nodes if n.type == "ATTRIBUTE"}
    assert used == {"lash_opacity"}


def test_a_full_disk_while_saving_the_take_is_one_line(bpy, blend, tmp_path, capsys, monkeypatch):
    """Blender reports a full disk as its operator's RuntimeError: one line naming the output, nothing left."""
    from facesmith.addon import animate
    from facesmith.cli import main

    def full(path):
        raise RuntimeError(f"Error: Cannot open file {path}@ for writing: No space left on device\n")

    monkeypatch.setattr(animate, "save_blend_copy", full)
    take = tmp_path / "take.csv"
    take.write_text("Timecode,BlendShapeCount,JawOpen\n00:00:10:00.000,1,0.5\n00:00:10:01.000,1,0.6\n")
    out = tmp_path / "out" / "animated.blend"
    assert main(["animate-arkit", str(take), "--rig", str(blend), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"{out}: cannot be written (No space left on device)") and "Traceback" not in "".join(err)
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.suffix == ".blend"]
