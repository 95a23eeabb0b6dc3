"""Skin material: Principled BSDF with the albedo texture, displacement through a Displacement node."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..inference.texture.maps import TextureSet


def load_packed_image(path: Path, name: str, colorspace: str) -> bpy.types.Image:
    image = bpy.data.images.load(str(path), check_existing=False)
    image.name = name
    image.colorspace_settings.name = colorspace
    image.pack()  # the .blend carries it; the temporary file can go
    return image


def build_skin_material(
    name: str, textures: TextureSet, albedo_png: Path, displacement_png: Path
) -> bpy.types.Material:
    albedo = load_packed_image(albedo_png, f"{name}_albedo", "sRGB")
    height = load_packed_image(displacement_png, f"{name}_displacement", "Non-Color")
    return skin_material(name, albedo, height, textures.displacement_range)


def skin_material(
    name: str,
    albedo_image: bpy.types.Image,
    height_image: bpy.types.Image,
    displacement_range: float,
    displacement: bool = True,
) -> bpy.types.Material:
    """The node setup over already loaded images (so the add-on can rebuild it from the packed ones)."""
    mat = bpy.data.materials.new(f"{name}_skin")
    mat.displacement_method = "BOTH"  # true displacement where the renderer subdivides, bump otherwise
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (600, 0)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (250, 100)
    bsdf.inputs["Roughness"].default_value = 0.55
    bsdf.inputs["Subsurface Weight"].default_value = 0.15
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)  # skin scatters red furthest
    bsdf.inputs["Subsurface Scale"].default_value = 0.003  # metres
    albedo = nodes.new("ShaderNodeTexImage")
    albedo.name = albedo.label = "Albedo"
    albedo.location = (-200, 150)
    albedo.image = albedo_image
    height = nodes.new("ShaderNodeTexImage")
    height.name = height.label = "Displacement Map"
    height.location = (-200, -250)
    height.image = height_image
    disp = nodes.new("ShaderNodeDisplacement")
    disp.location = (250, -250)
    disp.inputs["Midlevel"].default_value = 0.5
    # The PNG spans ±range metres around mid-grey: height − 0.5 in [−0.5, 0.5] times 2·range.
    disp.inputs["Scale"].default_value = 2.0 * displacement_range
    links.new(albedo.outputs["Color"], bsdf.inputs["Base Color"])
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    links.new(height.outputs["Color"], disp.inputs["Height"])
    if displacement:
        links.new(disp.outputs["Displacement"], out.inputs["Displacement"])
    return mat


def build_eye_material(name: str, image: bpy.types.Image | None = None) -> bpy.types.Material:
    """The eyeballs' material: the eye texture (texture/eyes.py: sclera, the photo's iris, pupil) through the
    spheres' UVs, wet and glossy; the glTF and FBX exporters carry it. Without an image (a result without an eye
    texture) the procedural eye below."""
    mat = bpy.data.materials.new(f"{name}_eye")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.05
    if image is not None:
        bsdf.inputs["Roughness"].default_value = 0.15  # a broad highlight; the clear coat gives the sharp one
        bsdf.inputs["Coat Weight"].default_value = 1.0  # the cornea's wet film
        bsdf.inputs["Coat Roughness"].default_value = 0.02
        tex = nodes.new("ShaderNodeTexImage")
        tex.name = tex.label = "Eye Texture"
        tex.location = (-350, 250)
        tex.image = image
        tex.extension = "EXTEND"  # the back pole lies on the texture's inscribed circle
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        return mat
    return procedural_eye(mat)


def procedural_eye(mat: bpy.types.Material) -> bpy.types.Material:
    """White sclera with a dark iris and pupil around the sphere's front pole (+z in the rig frame)."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    coords = nodes.new("ShaderNodeTexCoord")
    sep = nodes.new("ShaderNodeSeparateXYZ")
    ramp = nodes.new("ShaderNodeValToRGB")  # generated z: 1 at the pupil, 0 at the back
    links.new(coords.outputs["Normal"], sep.inputs["Vector"])
    links.new(sep.outputs["Z"], ramp.inputs["Fac"])
    ramp.color_ramp.interpolation = "CONSTANT"
    els = ramp.color_ramp.elements
    # Cosines of the half-angles an 11.7 mm iris and a 3 mm pupil subtend on a 12 mm eyeball.
    els[0].position, els[0].color = 0.0, (0.85, 0.83, 0.80, 1)  # sclera
    els[1].position, els[1].color = 0.87, (0.25, 0.17, 0.10, 1)  # iris
    pupil = els.new(0.992)
    pupil.color = (0.01, 0.01, 0.01, 1)
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def build_hidden_material(name: str) -> bpy.types.Material:
    """Fully transparent, for FLAME's own eyeball triangles that the eyeball spheres replace. A Principled BSDF
    with alpha 0 rather than a Transparent BSDF: exporters translate only the former (the .glb then says
    alphaMode BLEND, base colour alpha 0; with a Transparent BSDF they wrote an opaque white material)."""
    mat = bpy.data.materials.new(f"{name}_hidden")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    bsdf.inputs["Alpha"].default_value = 0.0
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    mat.surface_render_method = "BLENDED"
    mat.diffuse_color = (0.0, 0.0, 0.0, 0.0)
    return mat
