"""The repository builds into a Blender extension that installs, enables, reconstructs and disables headless."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile

import pytest

from ..conftest import REPO, SHARED

FACES, BAD = SHARED / "data" / "faces", SHARED / "data" / "bad_inputs"
MODULE = "bl_ext.user_default.facesmith"


def _blender_ext(bpy):
    return REPO.__class__(bpy.utils.system_resource("SCRIPTS")) / "addons_core/bl_pkg/cli/blender_ext.py"


@pytest.fixture(scope="module")
def installed(bpy, tmp_path_factory, dev_model):
    """Build the zip (no bundled wheels: the test environment has the dependencies), install and enable it."""
    import addon_utils

    from facesmith.inference.flame.io import save_model_npz

    out = tmp_path_factory.mktemp("ext")
    subprocess.run([sys.executable, str(_blender_ext(bpy)), "build", "--source-dir", str(REPO), "--output-dir", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    (zip_path,) = out.glob("facesmith-*.zip")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    start = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo="user_default", enable_on_install=True
    )
    install_s = time.perf_counter() - start
    assert result == {"FINISHED"} and MODULE in sys.modules
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.flame_path = str(save_model_npz(dev_model, out / "dev_flame.npz"))
    prefs.texture_size = "512"
    yield {"zip": zip_path, "install_s": install_s}
    if addon_utils.check(MODULE)[1]:
        addon_utils.disable(MODULE, default_set=True)


def test_zip_holds_the_add_on_and_not_the_rest(installed):
    names = zipfile.ZipFile(installed["zip"]).namelist()
    shipped = {
        "blender_manifest.toml",
        "__init__.py",
        "addon/operators.py",
        "inference/flame/forward.py",
        "cli/main.py",
    }
    assert shipped <= set(names)
    assert "assets/mediapipe_dense_embedding.npz" in names
    assert not any(n.startswith(("tests/", "training/", ".venv/", ".cache/", "bench/", ".ci/")) for n in names)


def test_preferences_show_the_model(bpy, installed):
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert "5023 vertices" in prefs.model_status and "development model" in prefs.model_status


def test_preferences_offer_only_installed_backends(bpy, installed):
    from facesmith.inference.landmarks.detect import available_backends

    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.landmarks == "auto"
    for name in ("mediapipe", "dlib", "face_alignment"):
        if name in available_backends():
            prefs.landmarks = name
            assert prefs.landmarks == name
        else:
            with pytest.raises(TypeError, match="not found in"):
                prefs.landmarks = name
    prefs.landmarks = "auto"


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_reconstruct_operator_builds_the_head(bpy, installed, tmp_path):
    scene = bpy.context.scene
    scene.facesmith.photos.clear()
    scene.facesmith.photos.add().path = str(FACES / "003_08.jpg")
    scene.facesmith.photos.add().path = str(FACES / "003_03.jpg")  # two photos: refined by photo-consistency
    assert scene.facesmith.refine
    scene.facesmith.expression_keys = 20
    assert bpy.ops.facesmith.reconstruct() == {"FINISHED"}
    head = scene.facesmith.head
    assert head is not None and len(head.data.vertices) == 5023
    keys = head.data.shape_keys.key_blocks
    assert len([k for k in keys if k.name.startswith("exp_")]) == 20 and keys["fitted_expression"].value == 1.0
    assert head.parent.type == "ARMATURE" and "jaw" in head.parent.data.bones
    assert "landmark RMS" in scene.facesmith.summary
    lines = scene.facesmith.agreement.splitlines()
    assert [line.split(":")[0] for line in lines] == ["003_08.jpg", "003_03.jpg"] and "agreement" in lines[0]
    assert bpy.ops.facesmith.set_expression(mode="NEUTRAL") == {"FINISHED"} and keys["fitted_expression"].value == 0.0
    take = tmp_path / "take.csv"
    take.write_text("Timecode,BlendShapeCount,JawOpen\n00:00:00:00.000,61,0.0\n00:00:00:30.000,61,1.0\n")
    assert bpy.ops.facesmith.import_arkit(filepath=str(take)) == {"FINISHED"}
    scene.frame_set(scene.frame_end)
    assert keys["jawOpen"].value == pytest.approx(1.0, abs=0.05)
    assert len(head["facesmith_shape"]) == 50  # the identity footage is tracked with
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, name in enumerate(("003_03.jpg", "003_08.jpg", "003_03.jpg")):
        (frames / f"{k:02d}.jpg").write_bytes((FACES / name).read_bytes())
    assert bpy.ops.facesmith.animate_video(filepath=str(frames)) == {"FINISHED"}
    assert scene.frame_end - scene.frame_start == 2
    scene.frame_set(scene.frame_start + 1)
    smiling = keys["exp_000"].value, keys["exp_001"].value
    scene.frame_set(scene.frame_start)
    assert (keys["exp_000"].value, keys["exp_001"].value) != smiling
    # The same footage on the ARKit keys, as `facesmith animate --keys arkit` (the jaw bone at rest): the smile
    # shows on the smile keys.
    assert bpy.ops.facesmith.animate_video(filepath=str(frames), keys="arkit") == {"FINISHED"}
    smile = ("mouthSmileLeft", "mouthSmileRight")
    scene.frame_set(scene.frame_start + 1)
    smiling = sum(keys[n].value for n in smile)
    scene.frame_set(scene.frame_start)
    assert smiling > sum(keys[n].value for n in smile) + 0.1
    assert bpy.ops.facesmith.rebuild_material() == {"FINISHED"}
    assert head.data.materials[0].node_tree.nodes["Albedo"].image.name == f"{head.name}_albedo"


@pytest.mark.skipif(not BAD.is_dir(), reason=f"needs {BAD}")
def test_bad_input_reports_and_leaves_the_scene_alone(bpy, installed):
    scene = bpy.context.scene
    before = sorted(o.name for o in bpy.data.objects)
    scene.facesmith.photos.clear()
    scene.facesmith.photos.add().path = str(BAD / "no_face_coffee.png")
    with pytest.raises(RuntimeError, match=r"no_face_coffee\.png: no face detected"):
        bpy.ops.facesmith.reconstruct()  # bpy turns the operator's ERROR report into this exception
    assert sorted(o.name for o in bpy.data.objects) == before
    scene.facesmith.photos.clear()
    with pytest.raises(RuntimeError, match="no photo chosen"):
        bpy.ops.facesmith.reconstruct()


def test_disable_leaves_nothing_behind(bpy, installed):
    import addon_utils

    assert addon_utils.check(MODULE) == (True, True)
    addon_utils.disable(MODULE, default_set=True)
    assert addon_utils.check(MODULE) == (False, False)
    assert not hasattr(bpy.types, "FACESMITH_PT_main") and not hasattr(bpy.types.Scene, "facesmith")
    start = time.perf_counter()
    addon_utils.enable(MODULE, default_set=True)
    enable_s = time.perf_counter() - start
    assert hasattr(bpy.types, "FACESMITH_PT_main")
    print(f"install {installed['install_s']:.2f} s, re-enable {enable_s:.3f} s")
