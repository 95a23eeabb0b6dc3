"""The repository builds into a Blender extension that installs, enables and disables headless."""

from __future__ import annotations

import sys
from pathlib import Path

from ..conftest import REPO


def _blender_ext(bpy) -> Path:
    return Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core/bl_pkg/cli/blender_ext.py"


def test_extension_builds_installs_and_enables(bpy, tmp_path):
    import subprocess
    import zipfile

    import addon_utils

    subprocess.run(
        [sys.executable, str(_blender_ext(bpy)), "build", "--source-dir", str(REPO), "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (zip_path,) = tmp_path.glob("facesmith-*.zip")
    names = zipfile.ZipFile(zip_path).namelist()
    assert "inference/flame.py" in names and "blender_manifest.toml" in names
    assert not any(n.startswith(("tests/", "training/", ".venv/", ".cache/", "bench/")) for n in names)

    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    module = "bl_ext.user_default.facesmith"
    assert module in sys.modules
    # The installed copy resolves its inference package relatively, inside bl_ext.
    flame_mod = __import__(f"{module}.inference.flame", fromlist=["flame_forward"])
    assert flame_mod.__name__ == f"{module}.inference.flame"

    assert addon_utils.check(module) == (True, True)
    addon_utils.disable(module, default_set=True)
    assert addon_utils.check(module) == (False, False)
    assert module not in {a.module for a in bpy.context.preferences.addons}
