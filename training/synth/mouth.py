"""Teeth, gums and tongue in the synthetic renders, so that the landmark network sees what real mouths show.

Without them the renders' open mouths show only the flat dark inside (engine.MOUTH_INSIDE_SRGB), and a network
trained on them reads a real smile's row of teeth as closed lips: on 12 open-mouthed London smiles the shipped
network's inner lip points part a median 0.36 × dlib's inner lip gap, and 0.61 × once the same photos' teeth are
painted the renders' mouth colour (`.cache/exp/mouth/paint.py`, 2026-12-07). The parts are the add-on's own (the
shipped `assets/ict_mouth.npz`, from ICT-FaceKit, MIT), placed on each head as the rig places them
(inference/mouth.fitted_parts: anchored to the identity's FLAME vertices) and posed by FLAME's own skinning
transforms: rigid with the head, the lower teeth and tongue with the jaw (the asset's jaw weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...inference.flame.model import FlameModel
from ...inference.mouth import PARTS, load_mouth, rigid_mean

HEAD_JOINT, JAW_JOINT = 1, 2  # FLAME's neck (the skull follows it) and jaw joints
SHOWN_PARTS = ("gums_and_tongue", "teeth")  # the socket is the dark inside the renders already draw
# Albedos, sRGB, before the per-image jitter: teeth off-white to yellowish, gums and tongue pink-red.
TEETH_SRGB = np.array([0.86, 0.82, 0.72], np.float32)
GUMS_SRGB = np.array([0.70, 0.33, 0.32], np.float32)


@dataclass(frozen=True)
class MouthMesh:
    """The parts the renders show, on FLAME's template: vertices (M, 3), triangles (T, 3), whether each vertex is
    a tooth (M,), its jaw weight (M,), and the anchors that carry it onto an identity (as the rig's)."""

    vertices: np.ndarray
    triangles: np.ndarray
    tooth: np.ndarray
    jaw_weight: np.ndarray
    anchor_ids: np.ndarray
    anchor_weights: np.ndarray
    rigid_group: np.ndarray


def load_mouth_mesh(model: FlameModel) -> MouthMesh | None:
    """The shipped parts for this mesh (None when the asset is missing or made for another mesh)."""
    asset = load_mouth(model.n_vertices)
    if asset is None:
        return None
    part = asset["part"].astype(int)
    keep = np.isin(part, [PARTS.index(name) for name in SHOWN_PARTS])
    tri = asset["triangles"]
    tri = tri[keep[tri].all(axis=1)]
    new_index = np.cumsum(keep) - 1
    return MouthMesh(
        vertices=asset["vertices"][keep].astype(np.float64), triangles=new_index[tri].astype(np.int64),
        tooth=part[keep] == PARTS.index("teeth"), jaw_weight=asset["jaw_weight"][keep].astype(np.float64),
        anchor_ids=asset["anchor_ids"][keep], anchor_weights=asset["anchor_weights"][keep].astype(np.float64),
        rigid_group=asset["rigid_group"][keep],
    )  # fmt: skip


def posed_mouth(mesh: MouthMesh, model: FlameModel, shape: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """The parts' vertices (M, 3) on the head of identity `shape`, posed by FLAME's skinning transforms (5, 4, 4).

    Placed on the identity only (not the expression: teeth do not move with the lips), then blended between the
    head's and the jaw's transform by the jaw weight, as linear blend skinning does."""
    template = np.asarray(model.v_template, np.float64)
    n = min(len(shape), model.n_shape)
    identity = template + np.asarray(model.shapedirs[:, :, :n], np.float64) @ np.asarray(shape[:n], np.float64)
    moved = np.einsum("nk,nkc->nc", mesh.anchor_weights, (identity - template)[mesh.anchor_ids])
    rest = mesh.vertices + rigid_mean(moved, mesh.rigid_group)
    homogeneous = np.c_[rest, np.ones(len(rest))]
    head = homogeneous @ transforms[HEAD_JOINT, :3].T
    jaw = homogeneous @ transforms[JAW_JOINT, :3].T
    return head + mesh.jaw_weight[:, None] * (jaw - head)
