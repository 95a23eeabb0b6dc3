"""inference/ and training/ never import bpy; importing the package does no Blender work."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
sys.modules["bpy"] = None  # any `import bpy` now raises ImportError
import facesmith, facesmith.inference, facesmith.training
names = [m.name for pkg in (facesmith.inference, facesmith.training)
         for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
         if not m.name.endswith(".__main__")]  # __main__ runs the CLI
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_inference_and_training_import_without_bpy():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) >= 8  # every module was imported, not an empty walk
