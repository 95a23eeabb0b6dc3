"""Building one rigged head in the current Blender file, and writing it out (.blend, .glb, .fbx)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..inference.errors import FacesmithError
from ..inference.files import writing
from ..inference.result import pins_text
from ..inference.rig import IDENTITY_KEY, RigData
from ..inference.texture.maps import TextureSet, write_albedo_png, write_displacement_png, write_eyes_png
from .build_material import build_eye_material, build_hidden_material, build_skin_material, load_packed_image
from .build_mesh import build_head_mesh
from .build_mouth import build_mouth_parts
from .build_rig import (
    add_corrective_drivers,
    apply_pose,
    attach_to_armature,
    build_armature,
    build_eyeballs,
)
from .build_scene import build_camera, build_lights

PROPERTY_PREFIX = "facesmith_"  # of the head mesh's custom properties (build_head): RigData.metadata's keys, ...
IDENTITY_PROPERTY = PROPERTY_PREFIX + IDENTITY_KEY  # β, as the head was built with
PHOTO_PROPERTY = PROPERTY_PREFIX + "photo"  # the first photo's path (all that heads built before pins record)
PHOTOS_PROPERTY = PROPERTY_PREFIX + "photos"  # JSON text: every photo's path, in the fit's order
PINS_PROPERTY = PROPERTY_PREFIX + "pins"  # JSON text: a pins file's list (photo: an index into the photos)


@dataclass(frozen=True)
class Head:
    collection: bpy.types.Collection
    armature: bpy.types.Object
    mesh: bpy.types.Object
    eyes: tuple[bpy.types.Object, ...]
    camera: bpy.types.Object
    drivers: int
    parts: tuple[bpy.types.Object, ...] = ()  # the mouth and the lashes (addon/build_mouth.py)
    part_drivers: int = 0  # their shape keys driven by the head's


def build_head(
    rig: RigData, textures: TextureSet, scene: bpy.types.Scene | None = None, eyeballs: bool = True,
    take_over_scene: bool = True,
) -> Head:  # fmt: skip
    """Create the head's objects in a new collection of `scene` (the current scene by default).

    Without `eyeballs`, FLAME's own eyeball triangles stay visible instead of separate spheres.
    `take_over_scene` makes the head's camera and world the scene's (headless runs); the add-on
    leaves a user's existing camera and world alone."""
    scene = scene or bpy.context.scene
    collection = bpy.data.collections.new(rig.name)
    scene.collection.children.link(collection)
    armature = build_armature(rig, collection)
    mesh = build_head_mesh(rig)
    collection.objects.link(mesh)
    attach_to_armature(mesh, armature)
    drivers = add_corrective_drivers(mesh, armature, rig)
    parts, part_drivers = build_mouth_parts(rig, mesh, armature, collection)
    with tempfile.TemporaryDirectory(prefix="facesmith-tex-") as tmp:
        # The file names travel into the .fbx (embedded) and the .glb: name them after the head.
        albedo = write_albedo_png(textures, Path(tmp) / f"{rig.name}_albedo.png")
        disp = write_displacement_png(textures, Path(tmp) / f"{rig.name}_displacement.png")
        mesh.data.materials.append(build_skin_material(rig.name, textures, albedo, disp))
        eye_image = None
        if eyeballs and textures.eyes is not None and rig.eyeball_loop_uvs is not None:
            eye_image = load_packed_image(write_eyes_png(textures, Path(tmp) / f"{rig.name}_eyes.png"),
                                          f"{rig.name}_eyes", "sRGB")  # fmt: skip
    eyes = []
    if eyeballs:
        mesh.data.materials.append(build_hidden_material(rig.name))
        mesh.data.polygons.foreach_set("material_index", rig.eyeball_faces.astype(np.int32))
        eyes = build_eyeballs(rig, armature, collection, build_eye_material(rig.name, eye_image))
    apply_pose(armature, rig.pose_quaternions)
    camera = build_camera(rig.camera, armature, collection, rig.name, take_over_scene)
    build_lights(armature, collection, rig.name, take_over_scene)
    for key, value in rig.metadata.items():
        mesh[PROPERTY_PREFIX + key] = value
    mesh[PHOTO_PROPERTY] = rig.photo_path
    # JSON text, as the pins are: one string in the Custom Properties panel, and the pins read as a pins file.
    mesh[PHOTOS_PROPERTY] = json.dumps(list(rig.photo_paths or [rig.photo_path]))
    mesh[PINS_PROPERTY] = pins_text(rig.pins, rig.pin_residuals_px)
    mesh["facesmith_displacement_range"] = textures.displacement_range
    return Head(collection, armature, mesh, tuple(eyes), camera, drivers, tuple(parts), part_drivers)


def head_identity(mesh: bpy.types.Object) -> np.ndarray:
    """β of a head Facesmith built (recorded on its mesh by build_head): the identity footage is tracked with, by
    `facesmith animate` and the add-on's Animate from Video alike."""
    if IDENTITY_PROPERTY not in mesh:
        raise FacesmithError(f"{mesh.name} does not record its identity: reconstruct it again")
    return np.asarray(mesh[IDENTITY_PROPERTY], float)


def remove_head(mesh: bpy.types.Object) -> tuple[bpy.types.Collection, ...]:
    """Delete a head build_head made (the rig and all it carries: mesh, eyes, mouth, lashes, camera, light), the
    materials, images, meshes and other data that only it used, and its collection when that is left empty: the
    names are free for the head that replaces it. Returns the collections that held that collection."""
    rig = mesh.parent if mesh.parent is not None and mesh.parent.type == "ARMATURE" else None
    objects = [rig, *rig.children_recursive] if rig is not None else [mesh]
    collections = {c for obj in objects for c in obj.users_collection}
    data = list(dict.fromkeys(obj.data for obj in objects if obj.data is not None))
    materials = {m for d in data for m in getattr(d, "materials", ()) if m is not None}
    images = {n.image for m in materials if m.node_tree for n in m.node_tree.nodes if getattr(n, "image", None)}
    for obj in objects:
        bpy.data.objects.remove(obj)
    for block in [*data, *materials, *images]:  # in this order: each frees the users of the next
        store = data_store(block)
        if store is not None and block.users == 0:
            store.remove(block)
    parents: list[bpy.types.Collection] = []
    for collection in collections:
        if collection.objects or collection.children:
            continue
        parents += [c for c in (bpy.context.scene.collection, *bpy.data.collections) if collection.name in c.children]
        bpy.data.collections.remove(collection)
    return tuple(dict.fromkeys(parents))


def data_store(block: bpy.types.ID):
    """The bpy.data collection that holds `block`, of the kinds a head is made of (None for another kind)."""
    stores = ((bpy.types.Mesh, bpy.data.meshes), (bpy.types.Armature, bpy.data.armatures),
              (bpy.types.Camera, bpy.data.cameras), (bpy.types.Light, bpy.data.lights),
              (bpy.types.Material, bpy.data.materials), (bpy.types.Image, bpy.data.images))  # fmt: skip
    return next((store for kind, store in stores if isinstance(block, kind)), None)


@contextmanager
def skinned_meshes_at_root() -> Iterator[None]:
    """glTF ignores the parent transforms of a skinned mesh (the Khronos validator warns,
    NODE_SKINNED_MESH_NON_ROOT): for the export, meshes deformed by their parent armature are unparented
    where they stand, then parented back as they were."""
    moved = []
    for obj in bpy.context.scene.objects:
        parent = obj.parent
        deformed = any(m.type == "ARMATURE" and m.object == parent for m in getattr(obj, "modifiers", ()))
        if obj.type == "MESH" and parent is not None and obj.parent_type == "OBJECT" and deformed:
            moved.append((obj, parent, obj.matrix_parent_inverse.copy(), obj.matrix_basis.copy()))
            world = obj.matrix_world.copy()
            obj.parent = None
            obj.matrix_world = world
    try:
        yield
    finally:
        for obj, parent, inverse, basis in moved:
            obj.parent = parent
            obj.matrix_parent_inverse = inverse
            obj.matrix_basis = basis


def export_glb(path: Path, use_selection: bool = False, animations: bool = False) -> None:
    """Mesh, skin, morph targets (shape keys) and the albedo texture in one binary glTF; with `animations`, the
    objects' active actions as ONE glTF animation (`facesmith animate --glb`): exported per action (the default),
    the bones' and the shape keys' actions were two animations, and importers that play one (Blender's own) left
    the face still."""
    with skinned_meshes_at_root():
        bpy.ops.export_scene.gltf(
            filepath=str(path), export_format="GLB", use_selection=use_selection, export_morph=True,
            export_skins=True, export_apply=False, export_animations=animations, export_cameras=False,
            export_lights=False, export_animation_mode="ACTIVE_ACTIONS",
        )  # fmt: skip


def export_fbx(path: Path, use_selection: bool = False) -> None:
    """Mesh, armature and shape keys, the textures embedded: a path to them would point at nothing
    elsewhere (Unity and Unreal both import embedded FBX textures)."""
    bpy.ops.export_scene.fbx(
        filepath=str(path), use_selection=use_selection, add_leaf_bones=False, bake_anim=False,
        object_types={"ARMATURE", "MESH"}, use_armature_deform_only=False, path_mode="COPY", embed_textures=True,
    )  # fmt: skip


def export_scene(stem: Path, formats: Iterable[str]) -> dict[str, Path]:
    """Write the current file as STEM.blend / STEM.glb / STEM.fbx. Written under their final names (into a
    staging folder: the command line commits the whole set atomically), since the .fbx records its own
    name in the path of its embedded textures."""
    writers = {
        "blend": lambda p: bpy.ops.wm.save_as_mainfile(filepath=str(p), copy=True, compress=True),
        "glb": export_glb,
        "fbx": export_fbx,
    }
    # Not with_suffix: a head named after "face.jpg.chip.jpg" is "face.jpg.chip", whose ".chip" is no suffix.
    paths = {fmt: stem.with_name(f"{stem.name}.{fmt}") for fmt in formats}
    for fmt, path in paths.items():
        with writing(path):
            writers[fmt](path)
    return paths
