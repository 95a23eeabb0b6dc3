"""Blender tests run on the bpy module (it stands in for `blender --background`)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
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


def evaluated_vertices(bpy, obj) -> np.ndarray:
    """(V, 3) vertex positions of `obj` after its shape keys and modifiers (the armature), in its own frame."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    mesh = obj.evaluated_get(depsgraph).to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    obj.evaluated_get(depsgraph).to_mesh_clear()
    return co.reshape(-1, 3).astype(np.float64)


def head_object(bpy):
    """The one Facesmith head mesh of the open file (not its mouth, lashes or eyeballs)."""
    (head,) = [o for o in bpy.data.objects if o.type == "MESH" and "facesmith_photo" in o]
    return head
