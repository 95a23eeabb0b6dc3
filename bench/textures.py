"""Texture validation on renders with known albedo, known lighting and a known displacement map.

A portrait is reconstructed once; its baked albedo becomes the known albedo. The head is rendered in
Blender (Cycles, matte skin, no subsurface, Standard view transform) under white lights — frontal, 45° side, from above — and
coloured or dim ones — frontal at 3000 K and 7500 K, frontal at -1 EV, a 3500 K key from the side with a
cool fill from the other — and a key from above and the side on skin with a sheen (Principled specular 0.5,
roughness 0.35: what the diffuse model leaves in the albedo) — and the whole pipeline (detect, fit, bake) runs on
each render. On texels the
pipeline saw well, it reports the PSNR of the de-lit albedo against the known one, next to the PSNR of
the plain projected colour (not de-lit) from the same run; each after a per-channel gain fit (the
spatial de-lighting alone). Under the coloured and dim lights the camera gain matters too: the absolute
PSNR (and the median's CIE76 ΔE) with the render's exposure calibrated once, on the frontal white light,
with the gain divided out (texture/colour.py) next to the same bake without it (the bake before colour
constancy, `--keep-photo-colour`). A grey card behind the head, lit by the same lights, is the scene the
exposure is read from (the -1 EV light dims it too). A fourth render carries a known displacement map (band-pass
noise, ±0.5 mm, 0.7–2 mm features) as real geometry (subdivided, displaced) on a flat albedo under a key
light from above and the side: the correlation of the recovered with the true displacement over the
face (see displacement_report for the two frames it is measured in), next to the first version's
high-pass reading from the same run. Also: seconds per texture at 1024². Fits go through
`Reconstructor.fit` with the default options; textures through the pipeline's `TextureBaker` at 1024².
Goals: under each light the de-lit albedo beats the plain projection (PSNR above the same-run baseline);
under the coloured and dim lights the absolute PSNR beats the bake without the camera gain;
displacement correlation (photo frame) ≥ 0.5, next to the high-pass baseline; ≤ 1 s per 1024² texture.
Not independent truth: the known albedo is a texture baked by this pipeline itself from a real portrait,
and the heads are FLAME meshes of the pipeline's own fit; the displacement truth is independent (a known
relief rendered as geometry) but `correlation` reads it through the fit's own texel→pixel mapping, so UV
registration error is left out (`correlation_uv` includes it).
Glossy key (sixth session): de-lit 26.00 dB against the plain projection's 18.59 (frontal matte 27.96): the sheen
costs ~2 dB. Taking it out as the white over the local skin colour (dichromatic model) gained 0.30 dB here at no cost
under the matte lights, but on over-exposed light skin in real photos (UTKFace) it removed a third of the face's
"white" and left pale wedges and green tints: not kept.
Usage: python bench/textures.py [--source PHOTO] [--keep DIR] [--no-check]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import OWN_BAKE, SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
DISPLACEMENT_LIGHT = (-35.0, 35.0)  # a key light from above and the side, as in portraits


@dataclass(frozen=True)
class Light:
    """A sun (pitch, yaw in degrees) of a colour (kelvin, None: white) and strength (× the scene's), and an
    optional second sun from the other side, bluish: the light a window or a screen adds."""

    pitch: float
    yaw: float
    kelvin: float | None = None
    strength: float = 1.0
    fill: bool = False
    gloss: bool = False  # skin with a sheen (specular highlights the diffuse model cannot explain) instead of matte


# White lights test the de-lighting; coloured and dim ones test the camera gain (colour constancy).
LIGHTS = {
    "frontal": Light(0.0, 0.0),
    "side_45": Light(0.0, 45.0),
    "top": Light(-50.0, 0.0),
    "warm_3000K": Light(0.0, 0.0, kelvin=3000.0),
    "cool_7500K": Light(0.0, 0.0, kelvin=7500.0),
    "dim_-1EV": Light(0.0, 0.0, strength=0.5),
    "coloured_side": Light(0.0, 40.0, kelvin=3500.0, fill=True),
    "glossy_key": Light(-20.0, 25.0, gloss=True),
}
GLOSS_SPECULAR, GLOSS_ROUGHNESS = (
    0.5,
    0.35,
)  # Principled BSDF: a skin's sheen under a key light (Blender's default level)
COLOUR_LIGHTS = ("warm_3000K", "cool_7500K", "coloured_side")
FILL_RGB = (0.45, 0.65, 1.0)  # the fill's colour (linear): a cool window or screen
FILL_STRENGTH = 0.4  # × the key's energy
BACKDROP_ALBEDO = 0.4  # linear: a light grey card, as the studio portraits' backdrop
BACKDROP_BEHIND = 0.4  # metres behind the head's centre
BACKDROP_SIZE = 4.0  # metres: it fills the frame
TEXTURE_SIZE = 1024
DISPLACEMENT_KIND = (
    "known relief rendered as geometry on the fit's own FLAME mesh, read through the fit's own texel->pixel "
    "mapping: UV registration error excluded (correlation_uv includes it)"
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def gain_aligned(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    gain = (estimate * truth).sum(0) / np.maximum((estimate * estimate).sum(0), 1e-12)
    return np.clip(estimate * gain, 0, 1)


def level_aligned(estimate: np.ndarray, reference: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """`estimate` scaled by the one factor that best maps `reference` (the same setting's estimate under the frontal
    white light) onto the truth: the render's exposure is calibrated once, so a light's colour and level show."""
    scale = float((reference * truth).sum() / max((reference * reference).sum(), 1e-12))
    return np.clip(estimate * scale, 0, 1)


def absolute_report(estimate: tuple, frontal: tuple) -> dict:
    """PSNR and the median's CIE76 ΔE against the known albedo, the exposure calibrated on the frontal light, with
    the camera gain divided out and without (the bake before colour constancy)."""
    from facesmith.inference.texture.colour import delta_e76

    with_gain, without_gain, truth = estimate
    out = {}
    for label, value, reference in (("", with_gain, frontal[0]), ("_without_gain", without_gain, frontal[1])):
        aligned = level_aligned(value, reference, frontal[2])
        out[f"psnr_absolute{label}_db"] = round(psnr(aligned, truth), 2)
        out[f"delta_e_median{label}"] = round(float(delta_e76(np.median(aligned, 0), np.median(truth, 0))), 2)
    return out


def geometric_displacement(mesh, textures) -> None:
    """Displace a subdivided copy of the surface by the height map, so the detail is real geometry.

    Catmull–Clark (not simple) subdivision: FLAME's flat facets would otherwise shade as detail of their
    own. The material's own displacement output is unlinked so the height is applied once."""
    import bpy

    sub = mesh.modifiers.new("subdivide", "SUBSURF")
    sub.levels = sub.render_levels = 3
    sub.subdivision_type = "CATMULL_CLARK"
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
    tree = mesh.data.materials[0].node_tree
    for link in list(tree.nodes["Material Output"].inputs["Displacement"].links):
        tree.links.remove(link)


def render_height(mesh, textures, path: Path) -> np.ndarray:
    """The known displacement as each pixel sees it (metres): the skin shows its height map as emission.

    This is the truth in the photo's frame, independent of any fit: sampled through the pipeline's own
    texel→pixel mapping, it is what the recovered map should hold at each texel."""
    import bpy

    for material in bpy.data.materials:  # eyes and the rest: no height
        if material != mesh.data.materials[0] and material.node_tree is not None:
            out = next(n for n in material.node_tree.nodes if n.type == "OUTPUT_MATERIAL")
            holdout = material.node_tree.nodes.new("ShaderNodeHoldout")
            material.node_tree.links.new(holdout.outputs[0], out.inputs["Surface"])
    tree = mesh.data.materials[0].node_tree
    emission = tree.nodes.new("ShaderNodeEmission")
    tree.links.new(tree.nodes["Displacement Map"].outputs["Color"], emission.inputs["Color"])
    tree.links.new(emission.outputs["Emission"], tree.nodes["Material Output"].inputs["Surface"])
    scene = bpy.context.scene
    scene.view_settings.view_transform = "Raw"
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "32"
    scene.cycles.samples = 4
    scene.cycles.filter_width = 0.5  # little pixel blending: heights, not colours
    scene.render.film_transparent = True
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(path))
    w, h = image.size
    rgba = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(rgba)
    rgba = rgba.reshape(h, w, 4)[::-1]  # Blender stores rows bottom-up
    grey = np.where(rgba[..., 3] > 0.99, rgba[..., 0] / np.maximum(rgba[..., 3], 1e-6), np.nan)
    return (grey - 0.5) * 2.0 * textures.displacement_range


def known_relief(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Band-pass noise (difference of Gaussians, 2 and 6 texels ≈ 0.7 and 2 mm on the face), ±0.5 mm.

    Skin relief is band-limited: wrinkles and pores, while the smooth shape is FLAME's. Detail much
    coarser than this is indistinguishable from the shape model's own misfit in the shading."""
    import cv2

    white = rng.normal(size=shape).astype(np.float32)
    noise = cv2.GaussianBlur(white, (0, 0), 2.0) - cv2.GaussianBlur(white, (0, 0), 6.0)
    return (noise / np.abs(noise).max() * 0.0005).astype(np.float32)


def cavity_baseline(albedo: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The first version's reading, for comparison: high-pass of the log luminance, darker = deeper."""
    from facesmith.inference.texture.displacement import log_residual

    return -log_residual(albedo, seen, 6.0)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def truth_at_texels(part, in_photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The true height as the photo shows it (`in_photo`, per pixel, NaN off the head) read at each seen texel's pixel:
    (H, W) heights, NaN where unseen or off the head, and the face texels the photo saw well that have one."""
    from facesmith.inference.texture.albedo import sample_bilinear

    valid = np.isfinite(in_photo)
    px = part.pixels[part.weight > 0]
    at_texel = np.full(part.weight.shape, np.nan, np.float32)
    read = sample_bilinear(np.nan_to_num(in_photo)[..., None].astype(np.float32), px)[:, 0]
    inside = sample_bilinear(valid[..., None].astype(np.float32), px)[:, 0] > 0.999
    at_texel[part.weight > 0] = np.where(inside, read, np.nan)
    return at_texel, (part.weight > 0.5) & np.isfinite(at_texel)


def displacement_report(tex, part, true_uv: np.ndarray, in_photo: np.ndarray) -> dict:
    """Recovered vs known displacement on the face texels the photo saw well.

    The fit's UV registration is off by about a millimetre, as much as the relief's own scale, so the
    truth is compared twice: in UV (bounded by registration: `registration_ceiling` is how well the
    exact truth, read through the pipeline's mapping, itself correlates with the UV map), and as the
    photo shows it at each texel's pixel (what the recovery itself achieves: the albedo and the
    displacement share that mapping, so this is the alignment that matters on the rendered head)."""
    at_texel, face = truth_at_texels(part, in_photo)
    recovered, truth = tex.displacement[face], at_texel[face]
    return {
        "texels": int(face.sum()),
        "correlation": correlation(recovered, truth),
        "height_slope": round(float(np.polyfit(truth, recovered, 1)[0]), 2),
        "correlation_uv": correlation(recovered, true_uv[face]),
        "registration_ceiling": correlation(truth, true_uv[face]),
        "cavity_baseline_correlation": correlation(cavity_baseline(part.albedo, part.weight > 0)[face], truth),
    }


def render(
    rig,
    textures,
    light: Light,
    ambient: float,
    path: Path,
    bump_only: bool,
    side: int = 512,
    samples: int = 64,
    backdrop: bool = False,
):
    """Render the head under `light` and a grey world (with a grey card behind it if `backdrop`); returns the head."""
    import bpy

    from facesmith.addon.build_scene import render_png
    from facesmith.addon.head import build_head
    from facesmith.addon.output import reset_file
    from facesmith.inference.texture.colour import planckian_rgb

    reset_file()
    head = build_head(rig, textures)
    mat = head.mesh.data.materials[0]
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = GLOSS_ROUGHNESS if light.gloss else 1.0
    bsdf.inputs["Subsurface Weight"].default_value = 0.0
    # Lambertian, as the SH model assumes, unless the light is there to show what highlights cost
    bsdf.inputs["Specular IOR Level"].default_value = GLOSS_SPECULAR if light.gloss else 0.0
    if bump_only:
        mat.displacement_method = "BUMP"
    else:
        geometric_displacement(head.mesh, textures)
    key = next(o for o in bpy.data.objects if o.type == "LIGHT")
    key.rotation_euler = (np.radians(light.pitch), np.radians(light.yaw), 0.0)
    if light.kelvin is not None:
        key.data.color = tuple(planckian_rgb(light.kelvin) / planckian_rgb(light.kelvin).max())
    key.data.energy *= light.strength
    if light.fill:
        fill = bpy.data.objects.new("fill", bpy.data.lights.new("fill", "SUN"))
        fill.data.color, fill.data.energy = FILL_RGB, key.data.energy * FILL_STRENGTH
        fill.rotation_euler = (0.0, -np.radians(light.yaw), 0.0)
        bpy.context.scene.collection.objects.link(fill)
    bpy.context.scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (ambient,) * 3 + (1.0,)
    if backdrop:
        add_backdrop(head)
    # The pipeline reads photos as sRGB-encoded linear light; AgX (the default view) would add its own tone curve
    # and desaturation, which a brighter known albedo meets more of.
    bpy.context.scene.view_settings.view_transform = "Standard"
    render_png(path, max_side=side, samples=samples)
    return head


def add_backdrop(head) -> None:
    """A matte grey card behind the head, facing the camera and lit by the same suns: the scene a camera meters
    on (texture/colour.py reads the exposure from it), as the studio portraits' backdrop."""
    import bpy
    from mathutils import Vector

    bpy.context.view_layer.update()
    camera = head.camera.matrix_world
    forward = (camera.to_3x3() @ Vector((0.0, 0.0, -1.0))).normalized()
    centre = head.mesh.matrix_world @ (sum((Vector(c) for c in head.mesh.bound_box), Vector()) / 8)
    distance = (centre - camera.translation).dot(forward) + BACKDROP_BEHIND
    bpy.ops.mesh.primitive_plane_add(size=BACKDROP_SIZE, location=camera.translation + forward * distance)
    card = bpy.context.active_object
    card.rotation_euler = camera.to_euler()  # the plane's +z normal faces the camera, as the camera's own +z does
    material = bpy.data.materials.new("backdrop")
    material.use_nodes = True
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (BACKDROP_ALBEDO,) * 3 + (1.0,)
    bsdf.inputs["Roughness"].default_value = 1.0
    bsdf.inputs["Specular IOR Level"].default_value = 0.0
    card.data.materials.append(material)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=SHARED_FACES / "002_03.jpg")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--flame")
    add_check_argument(parser)
    args = parser.parse_args()
    from PIL import Image

    from facesmith.inference.images import load_photo
    from facesmith.inference.pipeline import Reconstructor
    from facesmith.inference.rig import rig_data
    from facesmith.inference.texture.albedo import TextureBaker
    from facesmith.inference.texture.maps import TextureSet

    options = pipeline_options(args.flame)
    model = load_bench_model(args.flame)
    baker = TextureBaker(model, TEXTURE_SIZE)
    out = args.keep or Path(tempfile.mkdtemp(prefix="facesmith-tex-"))
    out.mkdir(parents=True, exist_ok=True)
    with Reconstructor(options, model) as rec:
        photo = load_photo(args.source, options.working_side)
        source = rec.fit([args.source])
        known, _ = baker.bake([(photo.rgb, photo.scale, source.photos[0])])
        rig = rig_data(model, source, 0, "truth")
        flat_disp = dataclasses.replace(known, displacement=np.zeros_like(known.displacement))

        def run(path: Path, bake_with: TextureBaker = baker):
            result = rec.fit([path])
            ph = load_photo(path, options.working_side)
            t = time.perf_counter()
            tex, _ = bake_with.bake([(ph.rgb, ph.scale, result.photos[0])])
            seconds = time.perf_counter() - t
            return tex, bake_with.photo_texture(ph.rgb, ph.scale, result.photos[0]), seconds

        # The pipeline before colour constancy: the same baker without the camera gain (--keep-photo-colour).
        plain_baker = dataclasses.replace(baker, colour_constancy=False)
        report, times, estimates = {}, [], {}
        for name, light in LIGHTS.items():
            path = out / f"light_{name}.png"
            render(rig, flat_disp, light, 0.05, path, bump_only=True, backdrop=True)
            tex, part, seconds = run(path)
            _, kept, _ = run(path, plain_baker)
            times.append(seconds)
            seen = part.weight > 0.5
            truth = known.albedo[seen]
            estimates[name] = (part.albedo[seen], kept.albedo[seen], truth)
            report[name] = {
                "texels": int(seen.sum()),
                "psnr_delit_db": round(psnr(gain_aligned(part.albedo[seen], truth), truth), 2),
                "psnr_plain_projection_db": round(psnr(gain_aligned(part.colour[seen], truth), truth), 2),
            }
        for name in LIGHTS:  # the render's exposure, calibrated once on the frontal white light, for every light
            report[name] |= absolute_report(estimates[name], estimates["frontal"])
            print(name, report[name])
        rng = np.random.default_rng(0)
        flat_albedo = np.broadcast_to(np.median(known.albedo.reshape(-1, 3), 0), known.albedo.shape).astype(np.float32)
        relief = TextureSet(flat_albedo.copy(), known_relief(rng, known.displacement.shape))
        path = out / "displacement.png"
        head = render(rig, relief, Light(*DISPLACEMENT_LIGHT), 0.15, path, bump_only=False, side=1024, samples=128)
        in_photo = render_height(head.mesh, relief, out / "height.exr")
        tex, part, seconds = run(path)
        times.append(seconds)
    report["displacement"] = disp = displacement_report(tex, part, relief.displacement, in_photo)
    print("displacement", disp)
    Image.fromarray(np.clip(128 + tex.displacement / 0.0006 * 127, 0, 255).astype(np.uint8)).save(
        out / "recovered_disp.png"
    )
    report["seconds_per_texture_1024"] = round(float(np.median(times)), 3)
    report["renders"] = str(out)
    goals = [
        Goal(f"psnr_delit_db_{name}", report[name]["psnr_delit_db"], ">", report[name]["psnr_plain_projection_db"],
             report[name]["psnr_plain_projection_db"], "plain projection", OWN_BAKE, "> baseline")
        for name in LIGHTS
    ]  # fmt: skip
    goals += [
        Goal(f"psnr_absolute_db_{name}", report[name]["psnr_absolute_db"], ">",
             report[name]["psnr_absolute_without_gain_db"], report[name]["psnr_absolute_without_gain_db"],
             "without the camera gain", OWN_BAKE, "> baseline")
        for name in (*COLOUR_LIGHTS, "dim_-1EV")
    ]  # fmt: skip
    goals += [
        Goal("displacement_correlation", disp["correlation"], ">=", 0.5, disp["cavity_baseline_correlation"],
             "high-pass cavity", DISPLACEMENT_KIND),
        Goal("seconds_per_texture_1024", report["seconds_per_texture_1024"], "<=", 1.0),
    ]  # fmt: skip
    finish(report, goals, not args.no_check)


if __name__ == "__main__":
    main()
