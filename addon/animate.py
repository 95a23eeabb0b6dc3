"""Animation on a head: an ARKit take (inference/arkit_csv.py) on its ARKit keys (`facesmith animate-arkit`, the
panel's import), a performance from footage (inference/animate.py) on its expression keys and bones (`facesmith
animate`, the panel's Animate from Video)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import bpy
import numpy as np

from ..inference.arkit import ARKIT_NAMES
from ..inference.arkit_csv import ArkitTake, gaze_rotations
from ..inference.errors import FacesmithError
from ..inference.rig import camera_setup, quaternion
from ..inference.track import Tracked
from .build_mesh import show_fitted
from .build_scene import place_camera

if TYPE_CHECKING:
    from ..inference.animate import AnimationResult


def arkit_key_count(obj: bpy.types.Object) -> int:
    keys = obj.data.shape_keys if obj.type == "MESH" else None
    return 0 if keys is None else sum(1 for name in ARKIT_NAMES if name in keys.key_blocks)


def find_arkit_head(objects) -> bpy.types.Object:
    """The Facesmith head (its mouth and lashes follow it by drivers), else the mesh with the most ARKit-named
    shape keys; an error if none has any."""
    best = max((o for o in objects if o.type == "MESH"), key=lambda o: ("facesmith_photo" in o, arkit_key_count(o)),
               default=None)  # fmt: skip
    if best is None or arkit_key_count(best) == 0:
        raise FacesmithError("no mesh with ARKit shape keys (eyeBlinkLeft, jawOpen, ...): is this a Facesmith head?")
    return best


# Tracked FLAME pose rows -> bones (as rig_data poses a photo: FLAME's global rotation on root, joint 1 on head).
TRACKED_BONES = {"root": 0, "head": 1, "jaw": 2, "eye_L": 3, "eye_R": 4}
ROOT_BONE = "root"  # also carries the head's translation (Tracked.translation): its rest axes are the rig's (FLAME's)


def head_camera(armature: bpy.types.Object) -> bpy.types.Object | None:
    """The head's own camera: build_scene.build_camera parents it to the rig object, in FLAME's frame."""
    return next((c for c in armature.children if c.type == "CAMERA"), None)


def _key_curve(action: bpy.types.Action, owner: bpy.types.ID, path: str, index: int, frames, values) -> None:
    """One keyframe per (frame, value) on the F-curve of path[index], replacing what it had; across the API change
    of Blender 4.4 (slotted actions)."""
    if hasattr(action, "fcurve_ensure_for_datablock"):
        curve = action.fcurve_ensure_for_datablock(owner, path, index=index)
    else:
        curve = action.fcurves.find(path, index=index) or action.fcurves.new(path, index=index)
    points = curve.keyframe_points
    points.clear()
    points.add(len(frames))
    points.foreach_set("co", np.column_stack([frames, values]).astype(np.float32).ravel())
    curve.update()


def _key_shape_keys(keys: bpy.types.Key, curves: dict[str, np.ndarray], frames) -> None:
    """Key each curve (name -> (N,) values at `frames`) on keys' shape key of that name."""
    for name in curves:  # the first keyframe creates the action (and its slot, from Blender 4.4 on)
        keys.key_blocks[name].keyframe_insert("value", frame=float(frames[0]))
    for name, values in curves.items():
        _key_curve(keys.animation_data.action, keys, f'key_blocks["{name}"].value', 0, frames, values)


def following_keys(head: bpy.types.Object) -> dict[bpy.types.Key, list[str]]:
    """The other meshes' shape keys that a driver ties to the head's key of the same name (the mouth and the lashes,
    build_mouth.drive_from_head): their Key -> those names."""
    source = head.data.shape_keys
    out = {}
    for obj in bpy.data.objects:
        keys = obj.data.shape_keys if obj.type == "MESH" and obj != head else None
        if keys is None or keys.animation_data is None:
            continue
        names = []
        for key in keys.key_blocks[1:]:
            curve = keys.animation_data.drivers.find(f'key_blocks["{key.name}"].value')
            targets = [t for v in curve.driver.variables for t in v.targets] if curve is not None else []
            if any(t.id == source and t.data_path == f'key_blocks["{key.name}"].value' for t in targets):
                names.append(key.name)
        if names:
            out[keys] = names
    return out


def key_head_shapes(head: bpy.types.Object, curves: dict[str, np.ndarray], frames) -> None:
    """Key the curves on the head's shape keys, and the same values on the keys that follow them by drivers (the
    teeth, tongue and lashes): drivers play in Blender only; the exporters (glTF, FBX) write keyframes, so without
    their own the mouth and lashes stood still in an exported take while the lips moved."""
    _key_shape_keys(head.data.shape_keys, curves, frames)
    for keys, names in following_keys(head).items():
        _key_shape_keys(keys, {n: curves[n] for n in names if n in curves}, frames)


def _key_rotations(armature: bpy.types.Object | None, rotations: dict[str, np.ndarray], frames) -> None:
    """Key each bone's (N, 3) axis-angle rotations as its rotation quaternion; bones the armature lacks are skipped."""
    if armature is None or armature.type != "ARMATURE":
        return
    bones = [b for b in rotations if b in armature.pose.bones]
    for bone in bones:  # the first keyframe creates the action (and its slot, from Blender 4.4 on)
        armature.pose.bones[bone].rotation_mode = "QUATERNION"
        armature.pose.bones[bone].keyframe_insert("rotation_quaternion", frame=float(frames[0]))
    for bone in bones:
        quats = np.stack([quaternion(aa) for aa in rotations[bone]])
        for i in range(4):
            _key_curve(armature.animation_data.action, armature, f'pose.bones["{bone}"].rotation_quaternion', i,
                       frames, quats[:, i])  # fmt: skip


def rest_jaw(armature: bpy.types.Object | None) -> None:
    """The jaw bone back at rest (it holds the photo's jaw as built): under ARKit weights jawOpen opens the jaw, and
    the photo's opening on the bone as well would open it twice."""
    if armature is not None and armature.type == "ARMATURE" and "jaw" in armature.pose.bones:
        armature.pose.bones["jaw"].rotation_quaternion = (1.0, 0.0, 0.0, 0.0)


def key_take(obj: bpy.types.Object, take: ArkitTake, scene: bpy.types.Scene, start: int = 1) -> tuple[int, list[str]]:
    """Keyframe every ARKit weight of the take on obj's shape key of that name (one key per row, the scene's
    frame rate; the mouth's and lashes' keys alike, key_head_shapes), turn the eye bones (if obj's armature has
    them) by the eyeLook weights, switch the photo's expression and jaw off (ARKit weights describe the face from
    neutral), and set the scene's frame range to the take. Returns (frames keyed, names in the take that the head lacks)."""
    keys = obj.data.shape_keys
    fps = scene.render.fps / scene.render.fps_base
    frames = take.scene_frames(fps, start)
    present = [n for n in take.weights if n in keys.key_blocks]
    missing = [n for n in take.weights if n not in keys.key_blocks]
    if not present:
        raise FacesmithError(f"{obj.name} has none of the take's ARKit shape keys")
    if "fitted_expression" in keys.key_blocks:  # a Facesmith head: the take starts from its neutral face
        show_fitted(obj, False)
    key_head_shapes(obj, {n: take.weights[n] for n in present}, frames)
    rest_jaw(obj.parent)
    _key_rotations(obj.parent, gaze_rotations(take.weights), frames)
    scene.frame_start = start
    scene.frame_end = max(start, int(np.ceil(frames[-1])))
    return take.frames, missing


def key_tracked(
    head: bpy.types.Object, tracked: Tracked, scene: bpy.types.Scene, start: int = 1,
    arkit: dict[str, np.ndarray] | None = None,
) -> int:  # fmt: skip
    """A tracked performance (inference/track.py) as keyframes: the expression on the exp_XXX keys — or, given
    `arkit` curves (track.arkit_curves), on the ARKit keys with the jaw bone left at rest, as jawOpen holds the
    jaw — (the photo's expression off; the mouth's and lashes' keys alike, key_head_shapes), FLAME's global
    rotation, jaw and gaze on the bones, the head's translation on the root bone's location, one key per tracked
    frame at the footage's rate; the scene's frame rate and range set to it. The head's own camera becomes the
    take's (Tracked.camera: the footage's size and lens), from which the translation is measured, so the head
    projects where the face was in each frame. Returns the frames keyed."""
    keys = head.data.shape_keys
    armature = head.parent
    fps = tracked.fps
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    frames = start + np.arange(len(tracked.frame_numbers), dtype=float)
    show_fitted(head, False)
    if arkit is None:
        curves = {f"exp_{k:03d}": tracked.expression[:, k] for k in range(tracked.expression.shape[1])}
        if tracked.eyelids is not None:  # blinks on FLAME's eyelid keys (subject's left, right)
            curves.update(eyelid_L=tracked.eyelids[:, 0], eyelid_R=tracked.eyelids[:, 1])
    else:
        curves = arkit
    curves = {n: c for n, c in curves.items() if n in keys.key_blocks}
    key_head_shapes(head, curves, frames)
    bones = {b: j for b, j in TRACKED_BONES.items() if b in armature.pose.bones and not (arkit and b == "jaw")}
    if arkit is not None:
        rest_jaw(armature)
    placed = tracked.translation is not None and ROOT_BONE in armature.pose.bones
    for bone in bones:
        armature.pose.bones[bone].keyframe_insert("rotation_quaternion", frame=float(frames[0]))
    if placed:
        armature.pose.bones[ROOT_BONE].keyframe_insert("location", frame=float(frames[0]))
    action = armature.animation_data.action
    for bone, j in bones.items():
        quats = np.stack([quaternion(aa) for aa in tracked.pose[:, j]])
        for i in range(4):
            _key_curve(action, armature, f'pose.bones["{bone}"].rotation_quaternion', i, frames, quats[:, i])
    if placed:
        # The root bone's rest matrix is the identity (every bone along +y, zero roll, the rig object's own frame is
        # FLAME's), so its location is the translation in FLAME's frame, applied after its rotation about its head
        # (FLAME's root joint): vertex -> R (v − root) + root + t, as the tracker posed the head.
        for i in range(3):
            _key_curve(action, armature, f'pose.bones["{ROOT_BONE}"].location', i, frames, tracked.translation[:, i])
        camera = head_camera(armature)
        if camera is not None and tracked.camera is not None:  # the camera the translation is measured from
            place_camera(camera, camera_setup(tracked.camera, tracked.image_size), scene)
    scene.frame_start, scene.frame_end = start, int(frames[-1])
    return len(frames)


def footage_background(
    scene: bpy.types.Scene, footage, first_frame: int, camera: bpy.types.Object | None = None
) -> None:
    """The footage behind `camera` (default: the scene's), frame for frame, to check the performance against: the
    head's camera placed as the tracker's (key_tracked), the head sits on the face."""
    camera = camera or scene.camera
    if camera is None:
        return
    clip = bpy.data.movieclips.load(str(Path(footage).resolve()))  # not relative to the working directory
    clip.frame_start = scene.frame_start - first_frame
    camera.data.show_background_images = True
    background = camera.data.background_images.new()
    background.source, background.clip, background.alpha = "MOVIE_CLIP", clip, 0.5


def key_animation(head: bpy.types.Object, animation: AnimationResult, scene: bpy.types.Scene) -> int:
    """The one Blender writer of a performance from footage (inference/animate.Animator.run), behind `facesmith
    animate` and the add-on's Animate from Video: keyed on the head from the scene's first frame (key_tracked; on the
    ARKit keys when the result has their curves) and, given a video, the footage behind the head's camera (its frame
    `first_frame` at the scene's first frame). Returns the frames keyed."""
    keyed = key_tracked(head, animation.tracked, scene, scene.frame_start, arkit=animation.arkit)
    if animation.background is not None:
        camera = head_camera(head.parent) if head.parent else None
        footage_background(scene, animation.background, animation.first_frame, camera)
    return keyed


def open_head(rig: Path) -> bpy.types.Object:
    """Open the .blend of a head Facesmith wrote, in place of the current file, and return its head
    (find_arkit_head)."""
    bpy.ops.wm.open_mainfile(filepath=str(rig), load_ui=False)
    return find_arkit_head(bpy.data.objects)


def save_blend_copy(path: Path) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, compress=True)


def write_file(path: Path, write) -> Path:
    """write(temp path) renamed over `path` (atomic_path_write); a full disk or a refused folder, as an OSError or as
    a Blender operator's RuntimeError, is one WriteError naming `path`."""
    from ..inference.files import atomic_path_write, writing

    with writing(path):
        return atomic_path_write(path, write)


def write_animation(
    head: bpy.types.Object, animation: AnimationResult, output: Path, glb: bool = False
) -> tuple[int, list[Path]]:
    """The Blender side of `facesmith animate`, on a head open_head opened: key the performance (key_animation) in
    the file's scene, save OUTPUT (and OUTPUT.glb, one animation), each written atomically. Returns the frames keyed
    and the files written."""
    from .head import export_glb

    keyed = key_animation(head, animation, bpy.context.scene)
    written = [write_file(output, save_blend_copy)]
    if glb:
        written.append(write_file(output.with_suffix(".glb"), lambda p: export_glb(p, animations=True)))
    return keyed, written


def write_take_animation(rig: Path, take: ArkitTake, output: Path, start: int = 1) -> tuple[str, int, list[str], str]:
    """The Blender side of `facesmith animate-arkit`: open the rig's .blend, key the Live Link take on its head
    (key_take), save OUTPUT atomically. Returns the head's name, the frames keyed, the ARKit names the head has no
    key for, and the scene's range and rate as a phrase."""
    head = open_head(rig)
    frames, missing = key_take(head, take, bpy.context.scene, start)
    write_file(output, save_blend_copy)
    scene = bpy.context.scene
    return head.name, frames, missing, f"scene frames {scene.frame_start}-{scene.frame_end} at {scene.render.fps} fps"
