"""Renders of synthetic FLAME heads with known geometry, for benchmarks and learning correspondences.

Needs the bpy module (or a Blender binary); Blender is imported when a render is asked for, so the rest of
training/ imports without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..inference.camera import Camera
from ..inference.rig import camera_setup


def head_scene(
    vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, camera: Camera, size: int, roughness: float = 0.6,
    sun_energy: float = 3.0, sun_euler: tuple[float, float, float] = (0.0, 0.0, 0.0),
):  # fmt: skip
    """A fresh Blender file holding a head mesh coloured per vertex (linear RGB) under an object carrying
    FLAME's y-up frame (as the add-on's rig object), the camera that sees it as `camera` (FLAME frame) at
    `size`², and a sun (Euler angles in the FLAME frame). Returns (scene, frame, head)."""
    import bpy

    from ..addon.build_mesh import new_mesh_object
    from ..addon.build_rig import FLAME_TO_BLENDER_X_DEG
    from ..addon.build_scene import build_camera
    from ..addon.output import reset_file

    reset_file()
    scene = bpy.context.scene
    frame = bpy.data.objects.new("flame_frame", None)
    scene.collection.objects.link(frame)
    frame.rotation_euler = (np.radians(FLAME_TO_BLENDER_X_DEG), 0.0, 0.0)
    head = new_mesh_object("head", vertices, faces)
    scene.collection.objects.link(head)
    head.parent = frame
    attr = head.data.color_attributes.new("skin", "FLOAT_COLOR", "POINT")
    attr.data.foreach_set("color", np.c_[colours, np.ones(len(colours))].astype(np.float32).ravel())
    mat = bpy.data.materials.new("skin")
    col = mat.node_tree.nodes.new("ShaderNodeVertexColor")
    col.layer_name = "skin"
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = roughness
    mat.node_tree.links.new(col.outputs["Color"], bsdf.inputs["Base Color"])
    head.data.materials.append(mat)
    build_camera(camera_setup(camera, (size, size)), frame, scene.collection, "camera")
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = sun_energy
    scene.collection.objects.link(sun)
    sun.parent = frame
    sun.rotation_euler = tuple(sun_euler)
    return scene, frame, head


def render_head(
    vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, camera: Camera, light_euler: np.ndarray,
    ambient: float, path: Path, samples: int = 32, size: int = 512,
) -> Path:  # fmt: skip
    """The head of `head_scene` under a grey world, rendered with Cycles to `path`."""
    import bpy

    from ..addon.build_scene import render_png

    scene, _, _ = head_scene(vertices, faces, colours, camera, size, sun_euler=tuple(light_euler))
    world = bpy.data.worlds.new("world")
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (ambient, ambient, ambient, 1.0)
    scene.world = world
    return render_png(path, max_side=size, samples=samples)
