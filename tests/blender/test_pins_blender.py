"""Pins in Blender: kept on the head mesh (they travel in the .blend), edited from Python (addon/pins.py), and
Re-solve with Pins (facesmith.resolve_pins): the head rebuilt in place from its photos with its pins."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from facesmith.inference.errors import FacesmithError
from facesmith.inference.fit.targets import Pin
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.rig import rig_data
from facesmith.inference.texture.maps import TextureSet
from facesmith.training.synthetic import sample_head

from ..conftest import FACES
from ..tiny_flame import exact_result
from .conftest import evaluated_vertices

NOSE_TIP = 3564  # FLAME's nose-tip vertex


@pytest.fixture
def add_on(bpy):
    """The add-on's classes and Scene.facesmith registered from this checkout, as Blender's enable does."""
    from facesmith import addon

    addon.register()
    yield
    addon.unregister()


def _procedural_head(bpy, model, pins: tuple[Pin, ...] = ()):
    """A head built from an exact fit of the procedural FLAME (no photo, no pipeline: fast), solved "with" `pins`."""
    from facesmith.addon.head import build_head
    from facesmith.addon.output import reset_file

    reset_file()
    result = exact_result(model, sample_head(model, np.random.default_rng(5)))
    result = dataclasses.replace(result, pins=pins, pin_residuals_px=tuple(0.25 for _ in pins))
    textures = TextureSet(np.full((32, 32, 3), 0.4, np.float32), np.zeros((32, 32), np.float32))
    head = build_head(rig_data(model, result, 0, "pinned", 2), textures).mesh
    bpy.context.scene.facesmith.head = head
    return head


def _objects(bpy) -> list[str]:
    return sorted(o.name for o in bpy.data.objects)


def test_pins_are_kept_on_the_head_and_survive_save_and_reload(bpy, add_on, procedural_model, tmp_path):
    import facesmith
    from facesmith.addon.pins import PINS_PROPERTY, head_pins, remove_pin

    built = Pin(0, 7, (0.2, 0.3, 0.5), (101.5, 88.25))
    head = _procedural_head(bpy, procedural_model, (built,))
    assert head_pins(head) == [built]  # stored at build time, from the fit's pins
    assert json.loads(head[PINS_PROPERTY])[0]["residual_px"] == 0.25
    by_vertex = facesmith.pin(head, 0, 12, (240.0, 310.5))
    assert by_vertex.face >= 0 and max(by_vertex.bary) == pytest.approx(1.0)  # the vertex as a corner of a triangle
    by_face = facesmith.pin(head, "synthetic", (3, np.array([0.6, 0.4, 0.0])), np.array([12.0, 13.0]))
    assert "residual_px" not in json.loads(head[PINS_PROPERTY])[0]  # edited: the old solve's residuals are gone
    assert remove_pin(head, 0) == built
    pins = [by_vertex, Pin(0, 3, (0.6, 0.4, 0.0), (12.0, 13.0))]
    assert head_pins(head) == pins and by_face == pins[1]
    path = tmp_path / "pinned.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert head_pins(bpy.data.objects["pinned"]) == pins  # exactly: the JSON text keeps every float


def test_a_bad_pin_is_one_error_and_changes_nothing(bpy, add_on, procedural_model):
    from facesmith.addon.pins import PINS_PROPERTY, add_pin, remove_pin

    head = _procedural_head(bpy, procedural_model, (Pin(0, 7, (0.2, 0.3, 0.5), (101.5, 88.25)),))
    stored, n_faces = head[PINS_PROPERTY], len(head.data.polygons)
    for photo, point, xy, message in [
        (0, (n_faces, (0.2, 0.3, 0.5)), (1.0, 2.0), f"face {n_faces} is not a triangle"),
        (0, (3, (0.5, 0.5, 0.5)), (1.0, 2.0), "not 3 barycentric coordinates"),
        (0, len(head.data.vertices), (1.0, 2.0), "is not a vertex of the model"),
        (1, 12, (1.0, 2.0), "photo 1 is not one of the 1 photo"),
        ("other.jpg", 12, (1.0, 2.0), "'other.jpg' is not one of the photos"),
        (0, 12, (float("nan"), 2.0), "xy .* not a list of 2 finite numbers"),
        (0, "nose", (1.0, 2.0), "neither a vertex id nor"),
    ]:
        with pytest.raises(FacesmithError, match=f"^pinned: pin not added: .*{message}"):
            add_pin(head, photo, point, xy)
    with pytest.raises(FacesmithError, match="no pin 1 to remove"):
        remove_pin(head, 1)
    assert head[PINS_PROPERTY] == stored
    # The operator checks the head's pins before any work: one error, the head as it was.
    head[PINS_PROPERTY] = json.dumps(
        [*json.loads(stored), {"photo": 0, "face": n_faces, "bary": [1, 0, 0], "xy": [1, 2]}]
    )
    before = _objects(bpy)
    with pytest.raises(RuntimeError, match=rf"^Error: pinned: pin 1: face {n_faces} is not a triangle"):
        bpy.ops.facesmith.resolve_pins()  # bpy turns the operator's ERROR report into this exception
    assert _objects(bpy) == before and bpy.context.scene.facesmith.head == head


def test_resolve_with_a_missing_photo_is_one_error_and_leaves_the_head(bpy, add_on, procedural_model, tmp_path):
    from facesmith.addon.pins import PHOTOS_PROPERTY

    head = _procedural_head(bpy, procedural_model)
    head[PHOTOS_PROPERTY] = json.dumps([str(tmp_path / "gone.jpg")])
    before = _objects(bpy)
    with pytest.raises(RuntimeError, match=r"^Error: pinned: its photo .*gone\.jpg is missing"):
        bpy.ops.facesmith.resolve_pins()
    assert _objects(bpy) == before and bpy.context.scene.facesmith.head == head


# --- the whole re-solve on a real photo ------------------------------------------------------------------------------


def _pixel(bpy, head, vertex: int) -> np.ndarray:
    """Where `vertex` of the head, as posed (fitted pose and expression), is in the scene camera's render (the
    head's camera, at the photo's resolution): photo pixels, x right, y down."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    scene = bpy.context.scene
    world = head.matrix_world @ Vector(evaluated_vertices(bpy, head)[vertex])
    x, y, _ = world_to_camera_view(scene, scene.camera, world)
    return np.array([x * scene.render.resolution_x, (1.0 - y) * scene.render.resolution_y])


def _resolved_shape(bpy) -> np.ndarray:
    assert bpy.ops.facesmith.resolve_pins() == {"FINISHED"}
    return _shape(bpy.context.scene.facesmith.head)


def _shape(head) -> np.ndarray:
    """β as the head records it, copied: a view of the ID property would point at freed memory once the head is
    replaced or the file reloaded."""
    return np.array(head["facesmith_shape"].to_list(), float)


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_resolve_with_pins_rebuilds_the_head_holding_the_pin(bpy, add_on, dev_model, tmp_path, monkeypatch):
    """Four fits of 002_08 with the development model (flat texture): 13 s on a loaded 2-core machine."""
    from facesmith.addon.output import reset_file
    from facesmith.addon.pins import PINS_PROPERTY, add_pin, head_pins

    monkeypatch.setenv("FACESMITH_FLAME", str(save_model_npz(dev_model, tmp_path / "dev_flame.npz")))
    reset_file()
    settings = bpy.context.scene.facesmith
    settings.photos.add().path = str(FACES / "002_08.jpg")
    settings.textures = False  # a flat skin colour: the fit is what is tested here
    assert bpy.ops.facesmith.reconstruct() == {"FINISHED"}
    head = settings.head
    name, auto_shape = head.name, _shape(head)
    target = _pixel(bpy, head, NOSE_TIP) + np.array([8.0, 0.0])  # the nose tip dragged 8 px right
    add_pin(head, "002_08.jpg", NOSE_TIP, target)
    scene, heads = bpy.context.scene, bpy.data.collections.new("Heads")  # the artist filed the head away
    scene.collection.children.link(heads)
    heads.children.link(head.users_collection[0])
    scene.collection.children.unlink(head.users_collection[0])
    pinned_shape = _resolved_shape(bpy)

    head = settings.head
    assert head.name == name and head.users_collection[0].name == name  # in place of the old head
    assert name in heads.children and name not in scene.collection.children
    assert {f"{name}_rig", f"{name}_camera"} <= {
        o.name for o in bpy.data.objects
    } and f"{name}_albedo" in bpy.data.images
    assert not [i.name for i in bpy.data.images if ".0" in i.name]  # the old head's data went with it
    assert not [m.name for m in bpy.data.materials if ".0" in m.name]
    keys = head.data.shape_keys.key_blocks
    assert len([k for k in keys if k.name.startswith("exp_")]) >= 50 and "jawOpen" in keys and "pose_jaw_01" in keys
    assert head.parent.type == "ARMATURE" and "jaw" in head.parent.data.bones
    assert [p.xy for p in head_pins(head)] == [tuple(target)]  # the pins stay on the new head
    (stored,) = json.loads(head[PINS_PROPERTY])
    assert stored["residual_px"] < 1.5  # the fit's own measure (8 px before the re-solve)
    assert np.linalg.norm(_pixel(bpy, head, NOSE_TIP) - target) < 1.5  # and Blender's: the rebuilt rig holds it
    assert np.abs(pinned_shape - auto_shape).max() > 1e-3  # the identity itself changed

    path = tmp_path / "pinned.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    shapes = []
    for _ in range(2):  # the saved file re-solved, twice: the same head each time, and the one solved before saving
        bpy.ops.wm.open_mainfile(filepath=str(path))
        shapes.append(_resolved_shape(bpy))
    assert np.abs(shapes[0] - shapes[1]).max() <= 1e-6
    assert np.abs(shapes[0] - pinned_shape).max() <= 1e-6
