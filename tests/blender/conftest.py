"""Blender tests run on the bpy module (it stands in for `blender --background`)."""

from __future__ import annotations

import os
import tempfile

import pytest

# bpy reads its user resources at import: keep them out of the real home, once per session.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-blender-"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/blender/" in str(item.fspath):
            item.add_marker(pytest.mark.blender)


@pytest.fixture(scope="session")
def bpy():
    return pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1)")
