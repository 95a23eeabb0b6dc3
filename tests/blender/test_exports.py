"""Exports as other tools read them: the Khronos glTF validator on the .glb and the Open Asset Import Library
(assimp, what many engines and viewers use) on the .fbx, both installed by tools/install_test_readers.sh."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED
from ..helpers import need, validated

FACES = SHARED / "data" / "faces"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")


@pytest.fixture(scope="module")
def head(bpy, dev_model, tmp_path_factory):
    """002_08 through `facesmith reconstruct`, and what the .blend holds to compare the exports with."""
    from facesmith.cli import main

    out = tmp_path_factory.mktemp("exports")
    model = save_model_npz(dev_model, out / "dev_flame.npz")
    args = ["reconstruct", str(FACES / "002_08.jpg"), "-o", str(out), "--no-preview", "--texture-size", "512"]
    assert main([*args, "--flame", str(model)]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out / "002_08.blend"))
    mesh = bpy.data.objects["002_08"]
    blend = {
        "shape_keys": [k.name for k in mesh.data.shape_keys.key_blocks[1:]],  # without the Basis
        "bones": sorted(b.name for b in bpy.data.objects["002_08_rig"].data.bones),
    }
    return out, blend


def glb_json(path: Path) -> dict:
    """The JSON chunk of a binary glTF."""
    data = path.read_bytes()
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20 : 20 + length])


def test_glb_passes_the_khronos_validator_with_skin_morphs_and_texture(head):
    out, blend = head
    report = validated(out / "002_08.glb")
    issues = report["issues"]
    assert (issues["numErrors"], issues["numWarnings"]) == (0, 0), issues["messages"]
    info = report["info"]
    assert info["hasSkins"] and info["hasMorphTargets"] and info["hasTextures"]
    gltf = glb_json(out / "002_08.glb")
    (skin,) = gltf["skins"]
    assert sorted(gltf["nodes"][j]["name"] for j in skin["joints"]) == blend["bones"]
    head_mesh = next(m for m in gltf["meshes"] if m["name"] == "002_08")
    assert head_mesh["extras"]["targetNames"] == blend["shape_keys"]
    assert all(len(p["targets"]) == len(blend["shape_keys"]) for p in head_mesh["primitives"])
    images = {i.get("name") for i in gltf["images"]}
    assert {"002_08_albedo", "002_08_eyes"} <= images


def test_glb_eye_material_carries_the_eye_texture(head):
    out, _ = head
    gltf = glb_json(out / "002_08.glb")
    (material,) = [m for m in gltf["materials"] if m["name"] == "002_08_eye"]
    texture = gltf["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]
    assert gltf["images"][texture["source"]]["name"] == "002_08_eyes"
    eye_meshes = [m for m in gltf["meshes"] if m["name"].startswith("002_08_eye_")]
    assert len(eye_meshes) == 2 and all("TEXCOORD_0" in p["attributes"] for m in eye_meshes for p in m["primitives"])


def test_glb_hides_flames_own_eyeball_triangles(head):
    """FLAME's eyeball triangles sit 0.2 mm inside the textured eye spheres: exported as the default opaque white
    material, another viewer shows white eyes or z-fighting. Their material must export fully transparent."""
    out, _ = head
    gltf = glb_json(out / "002_08.glb")
    (material,) = [m for m in gltf["materials"] if m["name"] == "002_08_hidden"]
    assert material.get("alphaMode") in ("BLEND", "MASK")
    assert material["pbrMetallicRoughness"]["baseColorFactor"][3] == 0.0
    head_mesh = next(m for m in gltf["meshes"] if m["name"] == "002_08")
    hidden = gltf["materials"].index(material)
    assert any(p.get("material") == hidden for p in head_mesh["primitives"])


def test_fbx_in_assimp_has_its_texture_embedded_and_the_bones(head):
    need(bool(shutil.which("assimp")), "assimp (assimp-utils)")
    out, blend = head
    res = subprocess.run(["assimp", "info", str(out / "002_08.fbx")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert re.search(r"Textures \(embed\.\):\s+2\b", text), text  # the albedo and the eyes travel inside the file
    refs = text.split("Texture Refs:")[1].split("Node hierarchy:")[0].split()
    assert sorted(Path(r.strip("'")).name for r in refs) == ["002_08_albedo.png", "002_08_eyes.png"]
    per_mesh = [int(b) for b in re.findall(r"\(002_08\): \[\d+ / (\d+) / \d+", text)]
    assert per_mesh and all(b == len(blend["bones"]) for b in per_mesh)  # every bone skins the head


def test_texture_maps_beside_the_exports(head):
    out, _ = head
    report = json.loads((out / "002_08.json").read_text())
    maps = report["texture_maps"]
    assert maps["displacement_range_m"] > 0 and maps["normal"] == "002_08_normal.png"
    assert maps["eyes"] == "002_08_eyes.png" and Image.open(out / maps["eyes"]).mode == "RGB"
    assert report["eyes"]["measured"] and 5.5 <= report["eyes"]["iris_radius_mm"] <= 6.5
    height = Image.open(out / maps["displacement"])
    assert height.mode.startswith("I") and height.size == (512, 512)  # 16-bit grey
    normal = np.asarray(Image.open(out / maps["normal"]).convert("RGB")).astype(float) / 255 * 2 - 1
    length = np.linalg.norm(normal, axis=-1)
    assert np.abs(length - 1).max() < 0.02 and normal[..., 2].min() > 0  # unit normals facing out
    relief = np.asarray(height, dtype=np.float64) != 32768
    padded = np.pad(relief, 1)
    near = np.any([padded[1 + dy : 513 + dy, 1 + dx : 513 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    assert normal[relief][:, :2].std() > 0.005  # the relief tilts the normals...
    assert np.abs(normal[~near][:, :2]).max() < 0.02  # ...and nothing else does
