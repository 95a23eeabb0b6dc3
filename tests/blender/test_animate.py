"""`facesmith animate`: footage tracked (inference/track.py) and keyed onto a head's rig (addon/animate.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from facesmith.inference.arkit import ARKIT_NAMES
from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED
from ..helpers import validated
from .conftest import evaluated_vertices, head_object
from .test_exports import glb_json

FACES = SHARED / "data" / "faces"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")


@pytest.fixture(scope="module")
def rig(bpy, dev_model, tmp_path_factory):
    from facesmith.cli import main

    model_file = save_model_npz(dev_model, tmp_path_factory.mktemp("model") / "dev_flame.npz")
    out = tmp_path_factory.mktemp("rig")
    args = [
        "reconstruct",
        str(FACES / "005_03.jpg"),
        "-o",
        str(out),
        "--no-preview",
        "--no-fbx",
        "--texture-size",
        "512",
    ]
    assert main([*args, "--flame", str(model_file)]) == 0
    return out / "005_03.blend", model_file


def test_footage_animates_the_rig(bpy, rig, tmp_path, capsys):
    """A folder of frames: one person alternating neutral and a broad smile, turning a little. The .blend gets an
    Action at the footage's rate over the scene's range; the smile frames open the jaw and differ in expression."""
    from PIL import Image

    from facesmith.addon.head import head_identity
    from facesmith.cli import main

    blend, model_file = rig
    frames = tmp_path / "frames"
    frames.mkdir()
    sources = [Image.open(FACES / name).convert("RGB") for name in ("002_03.jpg", "002_08.jpg")]
    for k in range(8):
        sources[k % 2].rotate(3 * np.sin(k), resample=Image.BICUBIC).save(frames / f"{k:04d}.png")
    out = tmp_path / "animated.blend"
    args = ["animate", str(frames), "--rig", str(blend), "-o", str(out), "--fps", "12", "--smooth", "1", "--glb"]
    assert main([*args, "--flame", str(model_file)]) == 0
    assert out.is_file() and out.with_suffix(".glb").stat().st_size > 0
    assert "8 frames of frames at 12 fps" in capsys.readouterr().out
    report = validated(out.with_suffix(".glb"))
    assert (report["issues"]["numErrors"], report["issues"]["numWarnings"]) == (0, 0)
    assert report["info"]["animationCount"] == 1  # the performance travels in the .glb, bones and face as one take
    gltf = glb_json(out.with_suffix(".glb"))
    moved = {gltf["nodes"][c["target"]["node"]].get("name") for c in gltf["animations"][0]["channels"]
             if c["target"]["path"] == "translation"}  # fmt: skip
    assert "root" in moved  # the head's translation travels with the take
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 8) and scene.render.fps / scene.render.fps_base == 12
    head = head_object(bpy)
    keys = head.data.shape_keys.key_blocks
    jaw = head.parent.pose.bones["jaw"]
    values = []
    for frame in range(1, 9):
        scene.frame_set(frame)
        values.append((keys["fitted_expression"].value, keys["exp_000"].value, keys["exp_001"].value,
                       2 * np.degrees(np.arccos(min(1.0, abs(jaw.rotation_quaternion[0]))))))  # fmt: skip
    values = np.array(values)
    assert (values[:, 0] == 0).all()  # the photo's own expression is off: the footage drives the face
    neutral, smile = values[0::2], values[1::2]
    assert np.abs(neutral[:, 1:3] - smile[:, 1:3]).max() > 0.3  # the expression follows the footage
    assert smile[:, 3].mean() > neutral[:, 3].mean()  # the smile parts the jaw
    # The identity tracked with is the one recorded on the head: the same β as the JSON `reconstruct` wrote beside it.
    assert list(head_identity(head)) == json.loads(blend.with_suffix(".json").read_text())["shape"]


def test_footage_problems_fail_first_in_one_line(bpy, rig, tmp_path, capsys):
    from facesmith.addon.head import IDENTITY_PROPERTY
    from facesmith.cli import main

    blend, model_file = rig
    assert main(["animate", str(tmp_path / "none.mp4"), "--rig", str(blend), "-o", str(tmp_path / "o.blend")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.mp4: no such file" in err[0]
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    del head_object(bpy)[IDENTITY_PROPERTY]  # a head that does not record its identity
    lone = tmp_path / "lone.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(lone), copy=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes((FACES / "002_03.jpg").read_bytes())
    assert main(["animate", str(empty), "--rig", str(lone), "-o", str(tmp_path / "o.blend")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{lone}: " in err[0] and "does not record its identity" in err[0]
    assert not (tmp_path / "o.blend").exists()


def test_without_a_rig_the_head_comes_from_the_footage(bpy, rig, tmp_path, capsys):
    """No --rig: a head is reconstructed from frames spread over the footage and animated; nothing else is left. An
    identity frame without a face is skipped and named as the user's file and frame, and the count says so."""
    from PIL import Image

    from facesmith.cli import main

    _, model_file = rig
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(6):
        (frames / f"{k:03d}.jpg").write_bytes((FACES / ("004_03.jpg" if k % 3 else "004_08.jpg")).read_bytes())
    Image.new("RGB", (400, 400), (90, 90, 90)).save(frames / "002.jpg")  # identity frames 0, 2, 4: one has no face
    out = tmp_path / "out" / "performer.blend"
    args = ["animate", str(frames), "-o", str(out), "--identity-frames", "3", "--flame", str(model_file)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "head built from 2 of 3 frames" in err and f"{frames}, frame 2: no face detected" in err
    assert "no face in 1 frame(s), 2: interpolated" in err and "frame_000002" not in err
    assert sorted(p.name for p in out.parent.iterdir()) == ["performer.blend"]
    bpy.ops.wm.open_mainfile(filepath=str(out))
    head = head_object(bpy)
    assert head.name == "performer" and head.data.shape_keys.animation_data.action is not None
    assert bpy.context.scene.frame_end == 6


def test_a_video_on_the_arkit_keys_with_the_footage_behind_the_camera(bpy, rig, tmp_path):
    from facesmith.cli import main

    blend, model_file = rig
    clip = _clip(tmp_path / "clip.mp4", ["005_03.jpg", "005_08.jpg"] * 3, 10.0)
    out = tmp_path / "arkit.blend"
    args = ["animate", str(clip), "--rig", str(blend), "-o", str(out), "--keys", "arkit", "--smooth", "1"]
    assert main([*args, "--flame", str(model_file)]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    head = head_object(bpy)
    keys = head.data.shape_keys.key_blocks
    curves = {fc.data_path for fc in _curves(head.data.shape_keys.animation_data.action)}
    assert 'key_blocks["jawOpen"].value' in curves and not any("exp_" in c for c in curves)
    weights = []
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        weights.append([k.value for k in keys if k.name in ARKIT_NAMES])
        assert tuple(head.parent.pose.bones["jaw"].rotation_quaternion) == (1, 0, 0, 0)  # jawOpen holds the jaw
    weights = np.array(weights)
    assert 0 <= weights.min() and weights.max() <= 1 and np.median(weights) < 0.2  # a light expression, in range
    assert np.abs(weights[1::2].mean(0) - weights[0::2].mean(0)).max() > 0.1  # the two photos differ
    camera = scene.camera.data
    assert camera.show_background_images and camera.background_images[0].clip.name == "clip.mp4"


def test_the_keyed_head_projects_where_the_tracker_placed_it(bpy, rig, dev_model):
    """A performance that turns and moves the head (Tracked.translation) keyed on the rig: seen through the head's
    camera, placed as the take's (Tracked.camera, the footage's size), every vertex lands where the tracker's own
    projection of the posed head puts it (inference/track.performance_vertices): the head is registered with the
    video, not only turned about the neck."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    from facesmith.addon.animate import key_animation
    from facesmith.addon.head import head_identity
    from facesmith.inference.animate import AnimationResult
    from facesmith.inference.camera import Camera
    from facesmith.inference.track import Tracked, performance_vertices

    blend, _ = rig
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    head = head_object(bpy)
    shape = head_identity(head)
    n, size = 4, (640, 480)
    pose = np.zeros((n, 5, 3))
    pose[:, 0] = [[0.0, 0.0, 0.0], [0.1, 0.25, 0.0], [-0.08, -0.3, 0.05], [0.0, 0.1, -0.05]]
    translation = np.array([[0.0, 0.0, 0.0], [0.03, -0.02, 0.04], [-0.04, 0.02, -0.03], [0.01, 0.0, 0.0]])
    camera = Camera("perspective", np.array([0.005, -0.03, 0.55]), 900.0, (size[0] / 2, size[1] / 2))
    tracked = Tracked(25.0, np.arange(n), shape, np.zeros((n, 10)), pose, np.ones(n, bool), size, None, translation,
                      camera)  # fmt: skip
    scene = bpy.context.scene
    key_animation(head, AnimationResult(tracked, None, 0, None), scene)
    assert (scene.render.resolution_x, scene.render.resolution_y) == size
    expected = camera.project(performance_vertices(dev_model, tracked))  # (n, V, 2) pixels
    rows = np.arange(0, dev_model.n_vertices, 37)
    errors = []
    for k in range(n):
        scene.frame_set(1 + k)
        world = [head.matrix_world @ Vector(v) for v in evaluated_vertices(bpy, head)[rows]]
        ndc = np.array([tuple(world_to_camera_view(scene, scene.camera, v))[:2] for v in world])
        pixels = np.column_stack([ndc[:, 0] * size[0], (1 - ndc[:, 1]) * size[1]])
        errors.append(np.abs(pixels - expected[k, rows]).max())
    assert max(errors) < 0.5, errors  # pixels, float32 in Blender
    # Without the translation the head would be far off: the test can tell.
    still = camera.project(performance_vertices(dev_model, dataclasses.replace(tracked, translation=None)))
    assert np.abs(still[1, rows] - expected[1, rows]).max() > 20


def _clip(path, names, fps):
    """A video of the rig's own person, one of `names` after another (β is the rig's: another person's face would
    be forced into expressions), resized, not distorted (a squashed face is forced into expressions too)."""
    import cv2

    photos = [cv2.imread(str(FACES / n)) for n in names]
    side = 600  # the portraits are square
    photos = [cv2.resize(p, (side * p.shape[1] // p.shape[0] // 2 * 2, side)) for p in photos]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, photos[0].shape[1::-1])
    for photo in photos:
        writer.write(photo)
    writer.release()
    return path


@pytest.fixture
def add_on(bpy):
    """The add-on's classes and Scene.facesmith registered from this checkout, as Blender's enable does."""
    from facesmith import addon

    addon.register()
    yield
    addon.unregister()


def _keyed(bpy) -> dict:
    """What an animation put in the open file: every keyframe on the head's shape keys and its rig (frame, value)
    by owner, path and index; the scene's rate and range; the head camera's lens and the footage behind it."""
    from facesmith.addon.animate import head_camera

    scene = bpy.context.scene
    head = head_object(bpy)
    found = {"fps": scene.render.fps / scene.render.fps_base, "range": (scene.frame_start, scene.frame_end)}
    for owner, data in (("keys", head.data.shape_keys), ("rig", head.parent)):
        for fc in _curves(data.animation_data.action):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            found[owner, fc.data_path, fc.array_index] = co
    camera = head_camera(head.parent).data
    found["camera"] = (camera.lens, camera.sensor_width, camera.shift_x, camera.shift_y)
    found["background"] = [(b.clip.name, b.clip.frame_start) for b in camera.background_images]
    return found


@pytest.mark.parametrize("keys", ["flame", "arkit"])
def test_the_command_line_and_the_add_on_key_the_same_animation(bpy, rig, add_on, tmp_path, monkeypatch, keys):
    """`facesmith animate` and the panel's Animate from Video, each with its defaults, on the same head and footage
    (a video: the footage behind the camera too) key the same animation: one flow (inference/animate.Animator) and one
    writer (addon/animate.key_animation) behind both. The command line's head is a copy without the JSON beside it:
    both read the head's identity where it is recorded, on the head."""
    from facesmith.cli import main

    blend, model_file = rig
    # Six frames: the default smoothing window (5) smooths; on fewer its quadratic fit passes through every point.
    clip = _clip(tmp_path / "clip.mp4", ["005_03.jpg", "005_08.jpg", "005_08.jpg"] * 2, 10.0)
    head = tmp_path / "head.blend"
    head.write_bytes(blend.read_bytes())
    out = tmp_path / "cli.blend"
    args = ["animate", str(clip), "--rig", str(head), "-o", str(out), "--flame", str(model_file)]
    assert main([*args, *(["--keys", keys] if keys != "flame" else [])]) == 0  # "flame": both with their default
    bpy.ops.wm.open_mainfile(filepath=str(out))
    by_cli = _keyed(bpy)
    monkeypatch.setenv("FACESMITH_FLAME", str(model_file))  # the add-on's model, without preferences
    bpy.ops.wm.open_mainfile(filepath=str(head))
    bpy.context.scene.facesmith.head = head_object(bpy)
    options = {"keys": keys} if keys != "flame" else {}
    assert bpy.ops.facesmith.animate_video(filepath=str(clip), **options) == {"FINISHED"}
    by_add_on = _keyed(bpy)
    assert by_cli.keys() == by_add_on.keys()
    assert sum(isinstance(k, tuple) for k in by_cli) > 10 and by_cli["background"][0][0] == "clip.mp4"
    assert by_cli["range"] == (1, 6)
    for name, value in by_cli.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_allclose(by_add_on[name], value, rtol=0, atol=1e-6, err_msg=str(name))
    assert by_add_on["camera"] == pytest.approx(by_cli["camera"])
    assert [by_add_on[k] for k in ("fps", "range", "background")] == [by_cli[k] for k in ("fps", "range", "background")]


def _curves(action):
    """The action's F-curves, before and after Blender 4.4's slotted actions."""
    if hasattr(action, "layers") and action.layers:
        return [
            fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags for fc in bag.fcurves
        ]
    return list(action.fcurves)


def test_an_arkit_take_in_the_glb_plays_head_face_teeth_and_eyes(bpy, rig, tmp_path):
    """`facesmith animate --keys arkit --glb`: the .glb, imported into an empty Blender, plays the take from one
    action: the head turns, jawOpen opens the lips and takes the lower teeth and tongue down with them (the jaw bone
    stays at rest: jawOpen holds the jaw), the upper teeth stay, the eyes turn and show the photo's iris."""
    from facesmith.addon.animate import open_head, write_animation
    from facesmith.inference.animate import AnimationResult
    from facesmith.inference.track import Tracked

    blend, _ = rig
    shape = np.asarray(json.loads(blend.with_suffix(".json").read_text())["shape"], float)
    n = 11
    ramp = np.linspace(0.0, 1.0, n)
    pose = np.zeros((n, 5, 3))
    pose[:, 0, 1] = 0.3 * np.sin(np.pi * ramp)  # the head turns and comes back: the last frame faces as the first
    pose[:, 3, 1] = pose[:, 4, 1] = 0.4 * ramp  # gaze
    tracked = Tracked(10.0, np.arange(n), shape, np.zeros((n, 10)), pose, np.ones(n, bool), (640, 480))
    out = tmp_path / "take.blend"
    write_animation(open_head(blend), AnimationResult(tracked, {"jawOpen": ramp}, 0, None), out, glb=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(out.with_suffix(".glb")))
    scene = bpy.context.scene
    (action,) = bpy.data.actions
    head, mouth = bpy.data.objects["005_03"], bpy.data.objects["005_03_mouth"]
    armature = bpy.data.objects["005_03_rig"]
    for owner in (armature, head.data.shape_keys, mouth.data.shape_keys):
        assert owner.animation_data is not None and owner.animation_data.action == action, owner.name
    first, last = (int(round(f)) for f in action.frame_range)
    scene.frame_set(first)
    head_rest, mouth_rest = _world_vertices(bpy, head), _world_vertices(bpy, mouth)
    scene.frame_set((first + last) // 2)
    assert 2 * np.degrees(np.arccos(min(1.0, abs(armature.pose.bones["root"].rotation_quaternion.w)))) > 10
    scene.frame_set(last)
    assert tuple(armature.pose.bones["jaw"].rotation_quaternion) == pytest.approx((1, 0, 0, 0), abs=1e-4)
    assert 2 * np.degrees(np.arccos(min(1.0, abs(armature.pose.bones["eye_L"].rotation_quaternion.w)))) > 15
    lips = -(_world_vertices(bpy, head) - head_rest)[:, 2]
    mouth_down = -(_world_vertices(bpy, mouth) - mouth_rest)[:, 2]
    on_jaw = _group_weights(mouth, "jaw") > 0.99
    teeth = next(i for i, m in enumerate(mouth.data.materials) if m.name.endswith("_teeth"))
    upper_teeth = np.zeros(len(mouth.data.vertices), bool)
    upper_teeth[[i for p in mouth.data.polygons if p.material_index == teeth for i in p.vertices]] = True
    upper_teeth &= _group_weights(mouth, "jaw") == 0
    assert lips.max() > 0.02  # jawOpen at 1 drops the chin by centimetres...
    assert on_jaw.sum() > 100 and mouth_down[on_jaw].mean() > 0.015  # ...and the lower teeth and tongue with it
    assert upper_teeth.sum() > 100 and np.abs(mouth_down[upper_teeth]).max() < 1e-3
    (material,) = bpy.data.objects["005_03_eye_L"].data.materials
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    (link,) = bsdf.inputs["Base Color"].links
    image = link.from_node.image
    side = image.size[0]
    pixels = np.asarray(image.pixels[:], np.float32).reshape(image.size[1], side, -1)[..., :3]
    pupil, iris, sclera = pixels[side // 2, side // 2], pixels[side // 2, side // 2 + side // 12], pixels[side // 2, 2]
    assert pupil.max() < 0.15 and sclera.min() > 0.5 and 0.1 < iris.mean() < sclera.mean()  # an iris on white


def _world_vertices(bpy, obj) -> np.ndarray:
    m = np.array(obj.matrix_world)
    return evaluated_vertices(bpy, obj) @ m[:3, :3].T + m[:3, 3]


def _group_weights(obj, name: str) -> np.ndarray:
    """Each vertex's weight in the vertex group `name` (0 outside it)."""
    index = obj.vertex_groups[name].index
    return np.array([next((g.weight for g in v.groups if g.group == index), 0.0) for v in obj.data.vertices])
