"""Helpers shared by test files: exact renders of a posed mesh with a known albedo, and the external readers
the export tests drive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO

NODE_PREFIX = REPO / ".cache" / "node"  # tools/install_test_readers.sh puts the glTF validator here


SKIN = np.array([0.62, 0.40, 0.30])  # linear RGB
LIGHT = np.zeros((9, 3))
LIGHT[[0, 1, 2, 3]] = [[3.0], [0.8], [0.4], [0.6]]  # ambient and a key light from the upper left front


def checked_albedo(uv: np.ndarray) -> np.ndarray:
    """Skin with a soft checker in texture space, symmetric about u = ½: a pattern the bake must put back where
    it belongs, too fine for the light estimate to mistake for shading."""
    return SKIN * (0.85 + 0.15 * np.cos(24 * np.pi * uv[:, :1]) * np.cos(24 * np.pi * uv[:, 1:]))


def render(model, fit, side: int = 512) -> np.ndarray:
    """sRGB image of the posed mesh: albedo from the UV layout × SH shading of the interpolated normals, front
    triangles painted far to near (the model the baker inverts, so de-lighting can be checked exactly)."""
    import cv2

    from facesmith.inference.flame.forward import vertex_normals
    from facesmith.inference.texture.albedo import sh_basis
    from facesmith.inference.texture.maps import linear_to_srgb

    faces, tri = model.faces, fit.camera.project(fit.vertices)[model.faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    cross = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    front = np.flatnonzero(cross < 0)
    ids = np.full((side, side), -1, np.int32)
    for f in front[np.argsort(fit.vertices[faces[front], 2].max(axis=1))]:
        cv2.fillConvexPoly(ids, np.round(tri[f] * 16).astype(np.int32), int(f), lineType=cv2.LINE_8, shift=4)
    rows, cols = np.nonzero(ids >= 0)
    f = ids[rows, cols]
    d = np.stack([cols, rows], axis=1) - tri[f, 0]
    b1 = (d[:, 0] * e2[f, 1] - d[:, 1] * e2[f, 0]) / cross[f]
    b2 = (e1[f, 0] * d[:, 1] - e1[f, 1] * d[:, 0]) / cross[f]
    bary = np.stack([1 - b1 - b2, b1, b2], axis=1)
    normals = np.einsum("nk,nkc->nc", bary, vertex_normals(fit.vertices, faces)[faces[f]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    uv = np.einsum("nk,nkc->nc", bary, model.uv_coords[model.uv_faces[f]])
    image = np.full((side, side, 3), 0.05)
    image[rows, cols] = checked_albedo(uv) * (sh_basis(normals) @ LIGHT)
    return np.round(linear_to_srgb(image) * 255).astype(np.uint8)


def need(tool_present: bool, what: str) -> None:
    """Skip without the reader; under CI that is a failure, so CI always runs them."""
    if not tool_present:
        message = f"{what} is not installed (tools/install_test_readers.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def validated(glb: Path) -> dict:
    """The Khronos validator's report of a .glb (tools/gltf_validate.js)."""
    need((NODE_PREFIX / "node_modules" / "gltf-validator").is_dir() and shutil.which("node"), "gltf-validator")
    args = ["node", str(REPO / "tools" / "gltf_validate.js"), str(NODE_PREFIX), str(glb)]
    res = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)
