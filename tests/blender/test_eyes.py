"""The eyeballs in Blender: UV spheres with the eye texture (texture/eyes.py) in a material the glTF exporter
carries, and the procedural eye where a result has no eye texture."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from facesmith.inference.rig import rig_data
from facesmith.inference.texture.eyes import EyeTexture, delta_e76, eye_texture
from facesmith.inference.texture.maps import TextureSet, srgb_to_linear
from facesmith.training.synthetic import sample_head

from ..tiny_flame import exact_result

IRIS_SRGB = (95, 125, 160)


def _textures(with_eyes: bool) -> TextureSet:
    eyes = None
    if with_eyes:
        colour = srgb_to_linear(np.array(IRIS_SRGB) / 255.0)
        eyes = EyeTexture(eye_texture(colour, 6.0, 12.0, size=128), colour, 6.0, 12.0)
    return TextureSet(np.full((32, 32, 3), 0.4, np.float32), np.zeros((32, 32), np.float32), eyes=eyes)


@pytest.fixture
def built(bpy, procedural_model):
    from facesmith.addon.head import build_head
    from facesmith.addon.output import reset_file

    def build(with_eyes: bool):
        reset_file()
        result = exact_result(procedural_model, sample_head(procedural_model, np.random.default_rng(5)))
        return build_head(rig_data(procedural_model, result, 0, "eyes_head", 2), _textures(with_eyes))

    return build


def glb_parts(path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    gltf = json.loads(data[20 : 20 + length])
    (bin_length,) = struct.unpack_from("<I", data, 20 + length)
    return gltf, data[28 + length : 28 + length + bin_length]


def test_glb_carries_the_eye_texture_on_uv_spheres(bpy, built, tmp_path):
    from facesmith.addon.head import export_glb

    head = built(True)
    assert len(head.eyes) == 2
    for eye in head.eyes:
        assert eye.data.uv_layers.active is not None
        node = eye.data.materials[0].node_tree.nodes["Eye Texture"]
        assert node.image is not None and node.image.packed_file is not None
    export_glb(tmp_path / "eyes_head.glb")
    gltf, blob = glb_parts(tmp_path / "eyes_head.glb")
    (material,) = [m for m in gltf["materials"] if m["name"] == "eyes_head_eye"]
    texture = gltf["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]
    image = gltf["images"][texture["source"]]
    assert image["name"] == "eyes_head_eyes" and image["mimeType"] == "image/png"
    view = gltf["bufferViews"][image["bufferView"]]
    png = Image.open(io.BytesIO(blob[view.get("byteOffset", 0) : view.get("byteOffset", 0) + view["byteLength"]]))
    rgb = srgb_to_linear(np.asarray(png.convert("RGB"), np.float32) / 255.0)
    side = rgb.shape[0]
    assert rgb[side // 2, side // 2].max() < 0.03  # the pupil at the front pole
    rho = 0.5 * np.sin(np.arcsin(0.6 * 6.0 / 12.0) / 2)  # 0.6 of the iris radius off the pupil axis (sphere_uv)
    iris_texel = rgb[side // 2, side // 2 + int(rho * side)]
    assert float(delta_e76(iris_texel, srgb_to_linear(np.array(IRIS_SRGB) / 255.0))) < 15
    eye_meshes = [m for m in gltf["meshes"] if m["name"].startswith("eyes_head_eye_")]
    assert len(eye_meshes) == 2 and all("TEXCOORD_0" in p["attributes"] for m in eye_meshes for p in m["primitives"])


def test_without_an_eye_texture_the_eyes_stay_procedural(bpy, built):
    head = built(False)
    nodes = head.eyes[0].data.materials[0].node_tree.nodes
    assert not any(n.bl_idname == "ShaderNodeTexImage" for n in nodes)
    assert any(n.bl_idname == "ShaderNodeValToRGB" for n in nodes)
