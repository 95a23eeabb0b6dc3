"""The layers' boundaries, read from every import in the source (module level and inside functions):
inference/ imports none of addon, training, the command line, bpy or torch; addon/ never imports training
or the command line; the command line leaves bpy to addon/ (its Blender work is addon's writers); nothing imports
the command line back; Blender is imported by addon/ and training/'s renders alone. And importing inference/ and
training/ with bpy unavailable works (no Blender work at import)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from ..conftest import REPO

FORBIDDEN = {
    "inference": {"facesmith.addon", "facesmith.training", "facesmith.cli", "bpy", "mathutils", "torch"},
    "addon": {"facesmith.training", "facesmith.cli", "torch"},
    "training": {"facesmith.cli"},
    "cli": {"bpy", "mathutils"},
}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in `source`, relative ones resolved against `package`."""
    parts = package.split(".")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from . import x` imports the module x itself
            names = [f"{module}.{a.name}" for a in node.names] if node.module is None else [module]
            found += [(node.lineno, name) for name in names]
    return found


def violations(layer: str) -> list[str]:
    bad = []
    for path in sorted((REPO / layer).rglob("*.py")):
        package = ".".join(["facesmith", *path.relative_to(REPO).parent.parts])
        for line, module in imported_modules(path.read_text(), package):
            for banned in FORBIDDEN[layer]:
                if module == banned or module.startswith(banned + "."):
                    bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_stay_inside_their_boundary(layer):
    assert violations(layer) == []


BLENDER = ("bpy", "mathutils", "bpy_extras")
# Besides addon/: training/'s renders (synthetic heads, and the environments its light prior integrates), and the
# synthetic data's HDRIs, found among the bpy module's own data files.
BLENDER_USERS = ("addon/", "training/render.py", "training/light_prior.py", "training/synth/assets.py")


def test_only_the_add_on_and_training_renders_import_blender():
    shipped = [*REPO.glob("*.py"), *(p for layer in FORBIDDEN for p in (REPO / layer).rglob("*.py"))]
    bad = []
    for path in sorted(shipped):
        name = path.relative_to(REPO).as_posix()
        package = ".".join(["facesmith", *path.relative_to(REPO).parent.parts])
        for line, module in imported_modules(path.read_text(), package):
            if module.split(".")[0] in BLENDER and not name.startswith(BLENDER_USERS):
                bad.append(f"{name}:{line} imports {module}")
    assert bad == []


def test_the_reader_sees_imports_inside_functions():
    """The check itself: imports inside functions, relative ones at any depth, `from . import x`."""
    source = "import numpy\ndef f():\n    from ...addon import head\n    from . import io\n    import torch.nn\n"
    assert imported_modules(source, "facesmith.inference.flame") == [
        (1, "numpy"), (3, "facesmith.addon"), (4, "facesmith.inference.flame.io"), (5, "torch.nn"),
    ]  # fmt: skip


SCRIPT = """
import importlib, pkgutil, sys
sys.modules["bpy"] = None  # any `import bpy` now raises ImportError
import facesmith, facesmith.inference, facesmith.training
names = [m.name for pkg in (facesmith.inference, facesmith.training)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_inference_and_training_import_without_bpy():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= 30  # every module was imported, not an empty walk


def test_fit_command_runs_without_blender(procedural_model, astronaut_photo, tmp_path):
    """`facesmith fit` is the entry layer's bpy-free path: it works where Blender cannot be imported."""
    from facesmith.inference.flame.io import save_model_npz

    model = save_model_npz(procedural_model, tmp_path / "procedural.npz")
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "from facesmith.cli import main\n"
        "sys.exit(main(['fit', sys.argv[1], '--json', sys.argv[2], '--flame', sys.argv[3]]))\n"
    )
    out = tmp_path / "fit.json"
    res = subprocess.run(
        [sys.executable, "-c", code, str(astronaut_photo), str(out), str(model)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert out.is_file() and out.with_suffix(".npz").is_file()
