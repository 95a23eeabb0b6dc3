"""Photo-like renders of ICT-FaceKit heads for bench/identity.py (Cycles CPU, via the bpy module).

Skin: per-vertex linear colours (from a portrait's baked FLAME albedo, carried over by the floor fit's
correspondence); eyes, teeth, gums, lashes: flat part colours. Light: the HDRI as the world (random turn and
strength) plus a sun key light. Background: a tone-mapped crop of another HDRI composited under the
transparent render. Camera: perspective, fixed per head; yaw turns the head about FLAME's +y through a pivot
10 cm behind the nose tip."""

from __future__ import annotations

from pathlib import Path

import bpy  # noqa: F401  (imported after BLENDER_USER_RESOURCES is set by the caller)
import numpy as np

HDRI_DIR = Path(bpy.utils.system_resource("DATAFILES", path="studiolights/world"))
HDRIS = ("city", "courtyard", "forest", "interior", "studio", "sunrise", "sunset")


def load_exr(path: Path) -> np.ndarray:
    img = bpy.data.images.load(str(path), check_existing=True)
    w, h = img.size
    px = np.empty(w * h * 4, np.float32)
    img.pixels.foreach_get(px)
    return px.reshape(h, w, 4)[::-1, :, :3].copy()  # row 0 at the top


def background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    """A tone-mapped (exposure, Reinhard, sRGB) crop of a random HDRI near its horizon, (size, size, 3) in [0, 1]."""
    import cv2

    name = str(rng.choice(HDRIS))
    hdr = load_exr(HDRI_DIR / f"{name}.exr")
    h, w = hdr.shape[:2]
    side = int(h * rng.uniform(0.3, 0.5))
    y0 = int(np.clip(h * 0.5 - side * rng.uniform(0.3, 0.7), 0, h - side))
    x0 = int(rng.uniform(0, w - side))
    crop = cv2.resize(hdr[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_CUBIC)
    crop = np.maximum(crop, 0) * (0.6 / max(float(np.median(crop)), 1e-4)) * rng.uniform(0.6, 1.2)
    crop = crop / (1 + crop)
    return np.clip(np.where(crop <= 0.0031308, 12.92 * crop, 1.055 * crop ** (1 / 2.4) - 0.055), 0, 1), name


def render(path: Path, size: int, samples: int) -> None:
    """As `build_scene.render_png` (Cycles CPU, transparent film), but denoised and with light clamps: the small
    bright suns in the HDRIs otherwise leave salt-and-pepper noise on the skin at a few dozen samples."""
    from facesmith.addon.build_scene import configure_cpu_render

    scene = bpy.context.scene
    configure_cpu_render(scene)
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.cycles.sample_clamp_direct = 4.0
    scene.cycles.sample_clamp_indirect = 1.0
    scene.render.film_transparent = True
    scene.render.resolution_percentage = max(1, min(400, round(100 * size / max(scene.render.resolution_x, 1))))
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def render_views(
    vertices: np.ndarray, triangles: np.ndarray, colours: np.ndarray, pivot: np.ndarray, camera, yaws_deg,
    paths, rng: np.random.Generator, samples: int = 24, size: int = 512,
) -> dict:  # fmt: skip
    """Render the head (FLAME frame, metres) at each yaw to `paths` (RGB PNG over a real background)."""
    import cv2

    from facesmith.training.render import head_scene

    energy = float(rng.uniform(1.5, 3.5))  # drawn in this order, as the cached renders were made
    sun_euler = tuple(np.radians([rng.uniform(-40, 10), rng.uniform(-45, 45), 0.0]))
    scene, _, head = head_scene(
        vertices - pivot, triangles, colours, camera, size, roughness=0.55, sun_energy=energy, sun_euler=sun_euler
    )
    head.location = tuple(pivot)
    light_name = str(rng.choice(HDRIS))
    world = bpy.data.worlds.new("world")
    nodes, links = world.node_tree.nodes, world.node_tree.links
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(HDRI_DIR / f"{light_name}.exr"), check_existing=True)
    coord = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, float(rng.uniform(0, 2 * np.pi)))
    links.new(coord.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    bg = nodes["Background"]
    links.new(env.outputs["Color"], bg.inputs["Color"])
    bg.inputs["Strength"].default_value = float(rng.uniform(0.4, 0.9))
    scene.world = world
    backgrounds = []
    for yaw, path in zip(yaws_deg, paths, strict=True):
        head.rotation_euler = (0.0, float(np.radians(yaw)), 0.0)
        rgba_path = Path(path).with_suffix(".rgba.png")
        render(rgba_path, size, samples)
        rgba = cv2.cvtColor(cv2.imread(str(rgba_path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) / 255.0
        bg_img, bg_name = background(rng, size)
        alpha = rgba[..., 3:]
        out = rgba[..., :3] * alpha + bg_img * (1 - alpha)
        cv2.imwrite(str(path), cv2.cvtColor(np.round(out * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        rgba_path.unlink()
        backgrounds.append(bg_name)
    return {"light_hdri": light_name, "backgrounds": backgrounds}
