"""The head mesh: FLAME topology and UVs, the fitted identity as Basis, shape keys, skinning groups."""

from __future__ import annotations

import bpy
import numpy as np

from ..inference.arkit import ARKIT_SLIDER
from ..inference.rig import EXPRESSION_SLIDER, FLAME_JOINT_BONES, POSE_FEATURE_SLIDER, RigData


def new_mesh_object(name: str, vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Object:
    """A smooth-shaded mesh object from vertex and triangle arrays (not linked to a scene)."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    mesh.update(calc_edges=True)
    mesh.validate()
    return bpy.data.objects.new(name, mesh)


def add_shape_key(obj: bpy.types.Object, name: str, coords: np.ndarray, lo: float, hi: float) -> bpy.types.ShapeKey:
    key = obj.shape_key_add(name=name, from_mix=False)
    key.data.foreach_set("co", np.ascontiguousarray(coords, dtype=np.float32).ravel())
    key.slider_min, key.slider_max = lo, hi
    key.value = 0.0
    return key


def build_head_mesh(rig: RigData) -> bpy.types.Object:
    """Mesh with UVs, Basis = fitted identity, exp_XXX / fitted_expression / eyelid / pose corrective keys,
    and one vertex group per deforming bone holding FLAME's skinning weights."""
    obj = new_mesh_object(rig.name, rig.basis, rig.faces)
    if rig.loop_uvs is not None:
        uv = obj.data.uv_layers.new(name="UVMap")
        uv.data.foreach_set("uv", np.ascontiguousarray(rig.loop_uvs, dtype=np.float32).ravel())
    obj.shape_key_add(name="Basis", from_mix=False)
    for k, delta in enumerate(rig.expression_keys):
        add_shape_key(obj, f"exp_{k:03d}", rig.basis + delta, -EXPRESSION_SLIDER, EXPRESSION_SLIDER)
    add_shape_key(obj, "fitted_expression", rig.basis + rig.fitted_expression, -1.0, 2.0).value = 1.0
    for name, delta in rig.eyelid_keys.items():
        add_shape_key(obj, name, rig.basis + delta, -0.5, 1.5)
    for c in rig.correctives:
        add_shape_key(obj, c.name, rig.basis + c.delta, -POSE_FEATURE_SLIDER, POSE_FEATURE_SLIDER)
    for name, delta in rig.arkit_keys.items():  # ARKit blendshapes (FLAME's mesh only): 0..1, off
        add_shape_key(obj, name, rig.basis + delta, *ARKIT_SLIDER)
    # The photo's expression as ARKit weights, kept on the object (the panel's Fitted button sets them again).
    obj["facesmith_fitted_as"] = rig.fitted_as
    obj["facesmith_arkit_fitted"] = {k: float(v) for k, v in rig.arkit_fitted.items()}
    if rig.fitted_as == "arkit":
        show_fitted(obj, True)
    obj.data.shape_keys.name = f"{rig.name}_keys"
    add_skin_groups(obj, rig.weights)
    return obj


def show_fitted(obj: bpy.types.Object, fitted: bool) -> None:
    """The photo's expression on (as the head was built: the fitted_expression key, or the ARKit weights) or
    off (neutral); the exp_XXX keys go to 0 either way."""
    keys = obj.data.shape_keys.key_blocks
    for key in keys:
        if key.name.startswith("exp_"):
            key.value = 0.0
    as_arkit = obj.get("facesmith_fitted_as", "flame") == "arkit"
    keys["fitted_expression"].value = 1.0 if fitted and not as_arkit else 0.0
    for name, weight in obj.get("facesmith_arkit_fitted", {}).items():
        if name in keys:
            keys[name].value = weight if fitted and as_arkit else 0.0


def add_skin_groups(obj: bpy.types.Object, weights: np.ndarray) -> None:
    """Vertex groups named after the bones that deform them (FLAME joints 0-4)."""
    for j, bone in enumerate(FLAME_JOINT_BONES):
        group = obj.vertex_groups.new(name=bone)
        w = weights[:, j]
        for value in np.unique(w[w > 0]):  # one call per distinct weight keeps this fast
            group.add(np.flatnonzero(w == value).tolist(), float(value), "REPLACE")
