"""Teeth, gums, tongue, mouth socket and eyelashes (inference/mouth.py) as two skinned meshes beside the head.

`NAME_mouth` (socket, gums and tongue, teeth) is skinned to the `head` and `jaw` bones by each vertex's jaw weight;
`NAME_lashes` to `head`. Each has shape keys named as the head's that move it: the ARKit keys (ICT-FaceKit's own
motion of the parts: teeth, tongue and lashes move with jawOpen, eyeBlink, ...), and for the lashes also FLAME's
expression, fitted-expression and eyelid keys, carried over from the lids they sit on. Every such key is driven
by the head's key of the same name, so posing or animating the head moves them along (in Blender; exporters
write the keys as morph targets of the same names, to be driven together, but no drivers: a keyed take keys them
as well, addon/animate.key_head_shapes). The teeth stay put under FLAME's expression keys, as real teeth do; the
jaw bone carries the lower ones.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..inference.mouth import PARTS, MouthParts
from ..inference.rig import RigData
from .build_mesh import add_shape_key, new_mesh_object
from .build_rig import attach_to_armature

PART_COLOURS = {  # linear RGB, roughness
    "mouth_socket": ((0.16, 0.03, 0.03), 0.6),
    "gums_and_tongue": ((0.45, 0.12, 0.12), 0.35),
    "teeth": ((0.75, 0.70, 0.60), 0.25),
    "eyelashes": ((0.02, 0.015, 0.012), 0.6),
}
LASH_ALPHA = 0.6  # at the root (the lash_opacity attribute fades it to the tip)
LASH_OPACITY = "lash_opacity"
MIN_KEY_M = 1e-4  # a key that moves no vertex of a part this far is left out (each key is a full morph target)


def part_material(
    name: str, part: str, one_sided: bool = False, alpha: float = 1.0, alpha_attribute: str | None = None
) -> bpy.types.Material:  # fmt: skip
    """A plain material; `one_sided` makes the back of the faces transparent (in Cycles and EEVEE alike), `alpha`
    below 1 the whole of it partly so, times the mesh's point attribute `alpha_attribute` when given."""
    colour, roughness = PART_COLOURS[part]
    mat = bpy.data.materials.new(f"{name}_{part}")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    if alpha < 1.0 or alpha_attribute:
        bsdf.inputs["Alpha"].default_value = alpha
        mat.surface_render_method = "BLENDED"
    if alpha_attribute:
        attribute = nodes.new("ShaderNodeAttribute")
        attribute.attribute_name = alpha_attribute
        times = nodes.new("ShaderNodeMath")
        times.operation = "MULTIPLY"
        times.inputs[1].default_value = alpha
        links.new(attribute.outputs["Fac"], times.inputs[0])
        links.new(times.outputs["Value"], bsdf.inputs["Alpha"])
    mat.diffuse_color = (*colour, 1.0)
    if one_sided:
        mix = nodes.new("ShaderNodeMixShader")
        links.new(nodes.new("ShaderNodeNewGeometry").outputs["Backfacing"], mix.inputs["Fac"])
        links.new(bsdf.outputs["BSDF"], mix.inputs[1])
        links.new(nodes.new("ShaderNodeBsdfTransparent").outputs["BSDF"], mix.inputs[2])
        links.new(mix.outputs["Shader"], nodes["Material Output"].inputs["Surface"])
        mat.use_backface_culling = True
    return mat


def drive_from_head(obj: bpy.types.Object, head: bpy.types.Object) -> int:
    """Each of obj's shape keys (but Basis) follows the head's key of the same name."""
    count = 0
    for key in obj.data.shape_keys.key_blocks[1:]:
        driver = key.driver_add("value").driver
        driver.type = "AVERAGE"
        var = driver.variables.new()
        var.type = "SINGLE_PROP"
        target = var.targets[0]
        target.id_type = "KEY"
        target.id = head.data.shape_keys
        target.data_path = f'key_blocks["{key.name}"].value'
        count += 1
    return count


def head_key_deltas(rig: RigData) -> dict[str, np.ndarray]:
    """The head's FLAME keys the lashes follow: expression components, the fitted expression, the eyelids."""
    out = {f"exp_{k:03d}": d for k, d in enumerate(rig.expression_keys)}
    out["fitted_expression"] = rig.fitted_expression
    out.update(rig.eyelid_keys)
    return out


def add_keys(obj: bpy.types.Object, rest: np.ndarray, deltas: dict[str, np.ndarray], head: bpy.types.Object) -> None:
    """Basis and one key per delta that moves obj at all, with the head key's slider range."""
    obj.shape_key_add(name="Basis", from_mix=False)
    head_keys = head.data.shape_keys.key_blocks
    for name, delta in deltas.items():
        if name in head_keys and np.abs(delta).max() > MIN_KEY_M:
            ref = head_keys[name]
            add_shape_key(obj, name, rest + delta, ref.slider_min, ref.slider_max)


def skin(obj: bpy.types.Object, jaw: np.ndarray) -> None:
    for bone, weights in (("head", 1.0 - jaw), ("jaw", jaw)):
        group = obj.vertex_groups.new(name=bone)
        for value in np.unique(np.round(weights, 3)):
            if value > 0:
                group.add(np.flatnonzero(np.round(weights, 3) == value).tolist(), float(value), "REPLACE")


def build_mouth_parts(
    rig: RigData, head: bpy.types.Object, armature: bpy.types.Object, collection: bpy.types.Collection
) -> tuple[list[bpy.types.Object], int]:  # fmt: skip
    """The mouth and lash meshes of rig.mouth, skinned, keyed and driven by the head; (objects, drivers)."""
    parts: MouthParts | None = rig.mouth
    if parts is None:
        return [], 0
    followed = head_key_deltas(rig)
    mouth = new_mesh_object(f"{rig.name}_mouth", parts.mouth_vertices, parts.mouth_triangles)
    lashes = new_mesh_object(f"{rig.name}_lashes", parts.lash_vertices, parts.lash_triangles)
    for part in PARTS[:3]:
        # The socket is a bag seen from inside: from outside (where FLAME's lips sit ahead of ICT's) it would
        # cover the tongue and teeth.
        mouth.data.materials.append(part_material(rig.name, part, one_sided=part == "mouth_socket"))
    mouth.data.polygons.foreach_set("material_index", parts.mouth_part[parts.mouth_triangles[:, 0]].astype(np.int32))
    # ICT's lashes are cards drawn with a strand texture; opaque they read as thick eyeliner: a see-through dark,
    # fading from root to tip (inference/mouth.lash_opacity).
    opacity = lashes.data.attributes.new(LASH_OPACITY, "FLOAT", "POINT")
    opacity.data.foreach_set("value", parts.lash_opacity.astype(np.float32))
    lashes.data.materials.append(part_material(rig.name, "eyelashes", alpha=LASH_ALPHA, alpha_attribute=LASH_OPACITY))
    mouth_deltas = dict(parts.mouth_keys)
    lash_deltas = {n: parts.follow(d)[1] for n, d in followed.items()}
    lash_deltas.update(parts.lash_keys)
    drivers = 0
    for obj, rest, deltas, jaw in ((mouth, parts.mouth_vertices, mouth_deltas, parts.mouth_jaw),
                                   (lashes, parts.lash_vertices, lash_deltas, np.zeros(len(parts.lash_vertices)))):  # fmt: skip
        collection.objects.link(obj)
        skin(obj, jaw)
        attach_to_armature(obj, armature)
        add_keys(obj, rest, deltas, head)
        obj.data.shape_keys.name = f"{obj.name}_keys"
        drivers += drive_from_head(obj, head)
    return [mouth, lashes], drivers
