"""An ARKit take (inference/arkit_csv.py) as keyframes on a head's ARKit shape keys; the panel's import and
`facesmith animate-arkit` both use it."""

from __future__ import annotations

import bpy
import numpy as np

from ..inference.arkit import ARKIT_NAMES
from ..inference.arkit_csv import ArkitTake
from ..inference.errors import FacesmithError
from .build_mesh import show_fitted


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


def _fcurve(action: bpy.types.Action, owner: bpy.types.ID, data_path: str) -> bpy.types.FCurve:
    """The F-curve of data_path in the action, across the API change of Blender 4.4 (slotted actions)."""
    if hasattr(action, "fcurve_ensure_for_datablock"):
        return action.fcurve_ensure_for_datablock(owner, data_path)
    return action.fcurves.find(data_path) or action.fcurves.new(data_path)


def key_take(obj: bpy.types.Object, take: ArkitTake, scene: bpy.types.Scene, start: int = 1) -> tuple[int, list[str]]:
    """Keyframe every ARKit weight of the take on obj's shape key of that name (one key per row, the scene's
    frame rate), switch the photo's expression off (ARKit weights describe the face from neutral), and set the
    scene's frame range to the take.
    Returns (frames keyed, names in the take that the head lacks)."""
    keys = obj.data.shape_keys
    fps = scene.render.fps / scene.render.fps_base
    frames = take.scene_frames(fps, start)
    present = [n for n in take.weights if n in keys.key_blocks]
    missing = [n for n in take.weights if n not in keys.key_blocks]
    if not present:
        raise FacesmithError(f"{obj.name} has none of the take's ARKit shape keys")
    if "fitted_expression" in keys.key_blocks:  # a Facesmith head: the take starts from its neutral face
        show_fitted(obj, False)
    for name in present:  # the first keyframe creates the action (and its slot, from Blender 4.4 on)
        keys.key_blocks[name].keyframe_insert("value", frame=float(frames[0]))
    action = keys.animation_data.action
    for name in present:
        curve = _fcurve(action, keys, f'key_blocks["{name}"].value')
        points = curve.keyframe_points
        points.clear()
        points.add(take.frames)
        co = np.column_stack([frames, take.weights[name]]).astype(np.float32)
        points.foreach_set("co", co.ravel())
        curve.update()
    scene.frame_start = start
    scene.frame_end = max(start, int(np.ceil(frames[-1])))
    return take.frames, missing
