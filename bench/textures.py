"""Texture validation on renders with known albedo, known lighting and a known displacement map.

A portrait is reconstructed once; its baked albedo becomes the known albedo. The head is rendered in
Blender (Cycles, matte skin, no subsurface) under three lights — frontal, 45° side, from above — and
the whole pipeline (detect, fit, bake) runs on each render. On texels the pipeline saw well, it reports
the PSNR of the de-lit albedo against the known one, next to the PSNR of the plain projected colour
(not de-lit) from the same run; each after a per-channel gain fit, since a single photo cannot tell
albedo brightness from light intensity. A fourth render carries a known displacement map (band-limited
noise, ±0.5 mm, ≈ 1.5 mm features) as real geometry (subdivided, displaced) on a flat albedo, lit from
above-left: the correlation of the recovered with the true displacement over the face. Also: seconds
per texture at 1024².
Usage: python bench/textures.py [--source PHOTO] [--keep DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
LIGHTS = {"frontal": (0.0, 0.0), "side_45": (0.0, 45.0), "top": (-50.0, 0.0)}  # sun pitch, yaw in degrees


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def gain_aligned(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    gain = (estimate * truth).sum(0) / np.maximum((estimate * estimate).sum(0), 1e-12)
    return np.clip(estimate * gain, 0, 1)


def geometric_displacement(mesh, textures) -> None:
    """Displace a subdivided copy of the surface by the height map, so the detail is real geometry.

    (Cycles' image-based bump left renders unchanged in this bpy build: measured 0.0 mean pixel change.)"""
    import bpy

    sub = mesh.modifiers.new("subdivide", "SUBSURF")
    sub.levels = sub.render_levels = 3
    sub.subdivision_type = "SIMPLE"  # keep FLAME's surface, only add vertices for the detail
    mesh.modifiers.move(len(mesh.modifiers) - 1, 0)
    image = bpy.data.images[f"{mesh.name}_displacement"]
    texture = bpy.data.textures.new("height", "IMAGE")
    texture.image = image
    texture.extension = "EXTEND"
    disp = mesh.modifiers.new("displace", "DISPLACE")
    disp.texture = texture
    disp.texture_coords = "UV"
    disp.mid_level = 0.5
    disp.strength = 2.0 * textures.displacement_range  # the PNG spans ±range around mid-grey
    mesh.modifiers.move(len(mesh.modifiers) - 1, 1)


def render(rig, textures, light, ambient: float, path: Path, bump_only: bool, side: int = 512) -> None:
    import bpy

    from facesmith.addon.batch import reset_file
    from facesmith.addon.build_scene import render_png
    from facesmith.addon.head import build_head

    reset_file()
    head = build_head(rig, textures)
    mat = head.mesh.data.materials[0]
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 1.0
    bsdf.inputs["Subsurface Weight"].default_value = 0.0
    bsdf.inputs["Specular IOR Level"].default_value = 0.0  # Lambertian, as the SH model assumes
    if bump_only:
        mat.displacement_method = "BUMP"
    else:
        geometric_displacement(head.mesh, textures)
    key = next(o for o in bpy.data.objects if o.type == "LIGHT")
    key.rotation_euler = (np.radians(light[0]), np.radians(light[1]), 0.0)
    bpy.context.scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (ambient,) * 3 + (1.0,)
    render_png(path, max_side=side, samples=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SHARED_FACES / "002_03.jpg")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--flame")
    args = parser.parse_args()
    from PIL import Image

    from facesmith.inference.albedo import TextureBaker
    from facesmith.inference.images import load_photo
    from facesmith.inference.model_paths import default_dev_model_path, load_model, resolve_flame_path
    from facesmith.inference.pipeline import default_embedding, fit_photos
    from facesmith.inference.rig_data import rig_data
    from facesmith.inference.textures import TextureSet

    model = load_model(resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path()))
    embedding = default_embedding(model)
    baker = TextureBaker(model, 1024)
    out = args.keep or Path(tempfile.mkdtemp(prefix="facesmith-tex-"))
    out.mkdir(parents=True, exist_ok=True)
    photo = load_photo(args.source)
    source = fit_photos([args.source], model, embedding=embedding)
    known, _ = baker.bake([(photo.rgb, photo.scale, source.photos[0])])
    rig = rig_data(model, source, 0, "truth")
    flat_disp = dataclasses.replace(known, displacement=np.zeros_like(known.displacement))

    def run(path: Path):
        result = fit_photos([path], model, embedding=embedding)
        ph = load_photo(path)
        t = time.perf_counter()
        tex, _ = baker.bake([(ph.rgb, ph.scale, result.photos[0])])
        seconds = time.perf_counter() - t
        return tex, baker.photo_texture(ph.rgb, ph.scale, result.photos[0]), seconds

    report, times = {}, []
    for name, light in LIGHTS.items():
        path = out / f"light_{name}.png"
        render(rig, flat_disp, light, 0.05, path, bump_only=True)
        tex, part, seconds = run(path)
        times.append(seconds)
        seen = part.weight > 0.5
        truth = known.albedo[seen]
        report[name] = {
            "texels": int(seen.sum()),
            "psnr_delit_db": round(psnr(gain_aligned(part.albedo[seen], truth), truth), 2),
            "psnr_plain_projection_db": round(psnr(gain_aligned(part.colour[seen], truth), truth), 2),
        }
        print(name, report[name])
    # Known displacement: band-limited noise on a flat albedo, soft light.
    rng = np.random.default_rng(0)
    import cv2

    noise = cv2.GaussianBlur(rng.normal(size=(1024, 1024)).astype(np.float32), (0, 0), 10.0)  # ≈ 1.5 mm bumps
    true_disp = (noise / np.abs(noise).max() * 0.0005).astype(np.float32)
    flat_albedo = np.broadcast_to(np.median(known.albedo.reshape(-1, 3), 0), known.albedo.shape).astype(np.float32)
    path = out / "displacement.png"
    render(rig, TextureSet(flat_albedo.copy(), true_disp), (-20.0, 10.0), 0.5, path, bump_only=False, side=1024)
    tex, part, seconds = run(path)
    times.append(seconds)
    face = (part.weight > 0.5) & baker.usable
    corr = float(np.corrcoef(tex.displacement[face], true_disp[face])[0, 1])
    report["displacement_correlation"] = round(corr, 3)
    report["seconds_per_texture_1024"] = round(float(np.median(times)), 3)
    report["renders"] = str(out)
    Image.fromarray(np.clip(128 + tex.displacement / 0.0006 * 127, 0, 255).astype(np.uint8)).save(
        out / "recovered_disp.png"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
