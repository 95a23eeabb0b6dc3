"""Model resolution order: --flame, FACESMITH_FLAME, preference, development model."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesmith.inference.errors import MissingAssetError, ModelFileError
from facesmith.inference.flame.io import save_model_npz
from facesmith.inference.flame.paths import DEV_WARNING, ModelChoice, load_model, resolve_flame_path


@pytest.mark.parametrize(
    ("flag", "env", "pref", "expected"),
    [
        ("a.pkl", {"FACESMITH_FLAME": "b.pkl"}, "c.pkl", ("a.pkl", "--flame")),
        (None, {"FACESMITH_FLAME": "b.pkl"}, "c.pkl", ("b.pkl", "FACESMITH_FLAME")),
        (None, {}, "c.pkl", ("c.pkl", "preference")),
        (None, {"FACESMITH_FLAME": ""}, "", ("DEV", "development model")),
        (None, {}, None, ("DEV", "development model")),
    ],
)
def test_resolution_order(tmp_path, flag, env, pref, expected):
    dev = tmp_path / "dev.npz"
    dev.write_bytes(b"x")
    choice = resolve_flame_path(flag, env, pref, dev_model=dev)
    want_path = dev if expected[0] == "DEV" else Path(expected[0])
    assert choice == ModelChoice(want_path, expected[1])


def test_no_model_anywhere_says_how_to_get_one(tmp_path):
    with pytest.raises(MissingAssetError, match="FLAME 2023 Open.*--flame PATH.*FACESMITH_FLAME"):
        resolve_flame_path(None, {}, None, dev_model=tmp_path / "absent.npz")


def test_named_missing_file_does_not_fall_back(tmp_path):
    dev = tmp_path / "dev.npz"
    dev.write_bytes(b"x")
    choice = resolve_flame_path(None, {"FACESMITH_FLAME": str(tmp_path / "typo.pkl")}, None, dev_model=dev)
    with pytest.raises(ModelFileError, match=r"typo\.pkl: file not found"):
        load_model(choice)


def test_dev_model_load_warns(tmp_path, tiny_model):
    import dataclasses

    path = save_model_npz(dataclasses.replace(tiny_model, is_development=True), tmp_path / "dev.npz")
    model = load_model(ModelChoice(path, "development model"))
    assert model.warnings.count(DEV_WARNING) == 1  # the command line prints it once (test_cli)


def test_shipped_and_built_files_are_found_from_the_package():
    """Paths are taken from the package root, wherever the module sits inside it."""
    from facesmith.inference.flame.paths import DENSE_EMBEDDING, PACKAGE_ROOT, default_dev_model_path

    assert (PACKAGE_ROOT / "blender_manifest.toml").is_file() and DENSE_EMBEDDING.is_file()
    assert default_dev_model_path().parent == PACKAGE_ROOT / ".cache" / "models"
