"""Armature root → neck → head → jaw / eye_L / eye_R, pose-corrective drivers, fitted pose, eyeballs."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..inference.rig import BONE_PARENTS, BONES, RigData, pose_feature_expression
from .build_mesh import new_mesh_object

FLAME_TO_BLENDER_X_DEG = 90.0  # the rig object turns FLAME's y-up frame into Blender's Z-up


def build_armature(rig: RigData, collection: bpy.types.Collection) -> bpy.types.Object:
    """Bones at the FLAME joints of the shaped head, all pointing along FLAME +y with zero roll."""
    arm = bpy.data.armatures.new(f"{rig.name}_rig")
    obj = bpy.data.objects.new(f"{rig.name}_rig", arm)
    collection.objects.link(obj)
    obj.rotation_euler = (np.radians(FLAME_TO_BLENDER_X_DEG), 0.0, 0.0)
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        for name in BONES:
            bone = arm.edit_bones.new(name)
            bone.head = tuple(rig.bone_heads[name])
            bone.tail = tuple(rig.bone_tails[name])
            bone.roll = 0.0
            bone.use_deform = name != "root"
        for name, parent in BONE_PARENTS.items():
            if parent:
                arm.edit_bones[name].parent = arm.edit_bones[parent]
                arm.edit_bones[name].use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous
    for pbone in obj.pose.bones:
        pbone.rotation_mode = "QUATERNION"
    return obj


def attach_to_armature(mesh: bpy.types.Object, armature: bpy.types.Object) -> None:
    mesh.parent = armature
    modifier = mesh.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    modifier.use_vertex_groups = True
    modifier.use_deform_preserve_volume = False  # FLAME uses linear blend skinning


def add_corrective_drivers(mesh: bpy.types.Object, armature: bpy.types.Object, rig: RigData) -> int:
    """Drive each pose-corrective key by its entry of R − I of its bone's local rotation."""
    keys = mesh.data.shape_keys.key_blocks
    for c in rig.correctives:
        fcurve = keys[c.name].driver_add("value")
        driver = fcurve.driver
        driver.type = "SCRIPTED"
        for axis in "wxyz":
            var = driver.variables.new()
            var.name = axis
            var.type = "TRANSFORMS"
            target = var.targets[0]
            target.id = armature
            target.bone_target = c.bone
            target.transform_type = f"ROT_{axis.upper()}"
            target.rotation_mode = "QUATERNION"
            target.transform_space = "LOCAL_SPACE"
        driver.expression = pose_feature_expression(c.row, c.col)  # plain arithmetic: no Python needed
    return len(rig.correctives)


def apply_pose(armature: bpy.types.Object, quaternions: dict[str, np.ndarray]) -> None:
    for bone, q in quaternions.items():
        armature.pose.bones[bone].rotation_quaternion = tuple(q)


def build_eyeballs(rig: RigData, armature: bpy.types.Object, collection: bpy.types.Collection, material) -> list:
    """Eyeball spheres parented to the eye bones, so gaze turns them about the eye joints; with UVs for the eye
    texture where the rig has them."""
    objects = []
    for bone, (verts, faces) in rig.eyeballs.items():
        obj = new_mesh_object(f"{rig.name}_{bone}", verts, faces)
        if rig.eyeball_loop_uvs is not None and len(rig.eyeball_loop_uvs) == faces.size:
            uv = obj.data.uv_layers.new(name="UVMap")
            uv.data.foreach_set("uv", np.ascontiguousarray(rig.eyeball_loop_uvs, dtype=np.float32).ravel())
        collection.objects.link(obj)
        obj.data.materials.append(material)
        obj.parent = armature
        obj.parent_type = "BONE"
        obj.parent_bone = bone
        # A bone child sits at the bone's tail; its vertices are in the rig's frame, so undo that offset.
        obj.matrix_parent_inverse = Matrix.Translation(-Vector(rig.bone_tails[bone]))
        objects.append(obj)
    return objects
