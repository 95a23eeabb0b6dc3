"""Camera and light that see the head as the photo did, and the preview render."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy
from mathutils import Matrix, Vector

from ..inference.files import writing
from ..inference.rig import CameraSetup

PREVIEW_SAMPLES = 16
PREVIEW_MAX_SIDE = 512
SAVED_SAMPLES = 64  # what `blender -b NAME.blend -f 1` renders with


def build_camera(
    setup: CameraSetup, rig_object: bpy.types.Object, collection, name: str, take_over: bool = True
) -> bpy.types.Object:
    """A camera parented to the rig object, so its placement is in FLAME's frame (looking down −z).

    `take_over` makes it the scene camera with the photo's resolution; otherwise only when the scene
    has no camera yet (the add-on does not rearrange a user's scene)."""
    cam = bpy.data.cameras.new(f"{name}_camera")
    cam.clip_start, cam.clip_end = 0.01, 10.0
    obj = bpy.data.objects.new(f"{name}_camera", cam)
    collection.objects.link(obj)
    obj.parent = rig_object
    scene = bpy.context.scene
    if take_over or scene.camera is None:
        scene.camera = obj
    place_camera(obj, setup, scene)
    return obj


def place_camera(obj: bpy.types.Object, setup: CameraSetup, scene: bpy.types.Scene) -> None:
    """Lens and placement (in its parent rig's FLAME frame) of a head's camera as `setup` says; the scene's
    resolution too when it is the scene's camera."""
    cam = obj.data
    if setup.kind == "ORTHO":
        cam.type = "ORTHO"
        cam.ortho_scale = setup.ortho_scale
    else:
        cam.type = "PERSP"
        cam.sensor_fit = "AUTO"
        cam.sensor_width = 36.0
        cam.lens = setup.lens_mm
        cam.shift_x, cam.shift_y = setup.shift
    obj.location = tuple(setup.location)
    if scene.camera == obj:
        scene.render.resolution_x, scene.render.resolution_y = setup.resolution


def build_lights(rig_object: bpy.types.Object, collection, name: str, take_over: bool = True) -> list[bpy.types.Object]:
    """A key light from the camera side, slightly above, and (with `take_over` or no world yet) a soft grey world."""
    sun = bpy.data.lights.new(f"{name}_key", "SUN")
    sun.energy = 3.0
    sun.angle = 0.3
    key = bpy.data.objects.new(f"{name}_key", sun)
    collection.objects.link(key)
    key.parent = rig_object
    key.rotation_euler = (-0.35, 0.25, 0.0)  # rig frame: tilt the light down from above and to the side
    scene = bpy.context.scene
    if not take_over and scene.world is not None:
        return [key]
    world = bpy.data.worlds.new(f"{name}_world")
    world.color = (0.25, 0.25, 0.25)
    background = world.node_tree.nodes.get("Background")
    if background is not None:
        background.inputs["Color"].default_value = (0.3, 0.3, 0.3, 1.0)
    scene.world = world
    return [key]


def configure_cpu_render(scene: bpy.types.Scene) -> None:
    """Cycles on the CPU: the saved .blend then renders headless on any machine. EEVEE needs a GPU context and
    never finishes on a CPU-only render node."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = SAVED_SAMPLES


def render_png(path: Path, max_side: int = PREVIEW_MAX_SIDE, samples: int = PREVIEW_SAMPLES) -> Path:
    """Render the scene camera with Cycles on the CPU, transparent background, to `path`."""
    scene = bpy.context.scene
    render = scene.render
    configure_cpu_render(scene)
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    render.film_transparent = True
    long_side = max(render.resolution_x, render.resolution_y)
    render.resolution_percentage = max(1, min(400, round(100 * max_side / long_side)))
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    render.filepath = str(path)
    with writing(path):
        bpy.ops.render.render(write_still=True)
    return path


@contextmanager
def turned_view(
    camera: bpy.types.Object, mesh: bpy.types.Object, up: bpy.types.Object, degrees: float
) -> Iterator[bpy.types.Object]:
    """The scene camera, for the duration, is a copy of `camera` turned `degrees` about the head's vertical
    axis (`up`'s +y, FLAME's up) through the mesh's centre: the same framing, seen from the side."""
    scene = bpy.context.scene
    bpy.context.view_layer.update()  # world matrices of a freshly built (parented) rig are stale until then
    corners = [mesh.matrix_world @ Vector(c) for c in mesh.bound_box]
    centre = sum(corners, Vector()) / len(corners)
    axis = (up.matrix_world.to_3x3() @ Vector((0.0, 1.0, 0.0))).normalized()
    turn = Matrix.Translation(centre) @ Matrix.Rotation(math.radians(degrees), 4, axis) @ Matrix.Translation(-centre)
    turned = bpy.data.objects.new(f"{camera.name}_turned", camera.data)
    scene.collection.objects.link(turned)
    turned.matrix_world = turn @ camera.matrix_world
    previous = scene.camera
    scene.camera = turned
    try:
        yield turned
    finally:
        scene.camera = previous
        bpy.data.objects.remove(turned)
