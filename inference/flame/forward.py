"""FLAME forward pass in numpy: blendshapes, pose correctives, linear blend skinning, landmarks.

Batched over a leading axis B. Pose is axis-angle per joint (global, neck, jaw, eye_L, eye_R),
radians; vertices in metres in FLAME's frame (x right, y up, z towards the viewer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MissingAssetError
from .model import N_JOINTS, FlameModel

NECK, JAW = 1, 2
DYNAMIC_YAW_LIMIT = 39  # the contour embedding has one row per whole degree in [-39, 39]


@dataclass(frozen=True)
class FlameOutput:
    vertices: np.ndarray  # (B, V, 3) posed
    joints: np.ndarray  # (B, 5, 3) posed joint positions
    transforms: np.ndarray  # (B, 5, 4, 4) skinning transforms (rest -> posed)
    rotations: np.ndarray  # (B, 5, 3, 3) local joint rotations
    v_shaped: np.ndarray  # (B, V, 3) identity + expression, zero pose


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3); exact at zero angle."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = aa / safe
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    sin, cos = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), kmat.shape)
    return eye + sin * kmat + (1.0 - cos) * (kmat @ kmat)


def _as_batch(x: np.ndarray | None, width: int, batch: int) -> np.ndarray:
    if x is None:
        return np.zeros((batch, width))
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(batch, -1)


def _coefficients(x: np.ndarray | None, limit: int, batch: int, name: str) -> np.ndarray:
    x = _as_batch(x, limit, batch)
    if x.shape[1] > limit:
        raise ValueError(f"{name} has {x.shape[1]} components, the model has {limit}")
    return x


def batch_size(*params: np.ndarray | None) -> int:
    """Batch size implied by the parameters (1-D parameters are a batch of one)."""
    sizes = {np.asarray(p).shape[0] for p in params if p is not None and np.asarray(p).ndim > 1}
    if len(sizes) > 1:
        raise ValueError(f"inconsistent batch sizes {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def blend(basis: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Sum of the first K components of a (V, 3, N) basis weighted by (B, K) coefficients -> (B, V, 3)."""
    v, _, _ = basis.shape
    k = coefs.shape[1]
    if k == 0:
        return np.zeros((coefs.shape[0], v, 3))
    return np.einsum("vck,bk->bvc", basis[:, :, :k], coefs, optimize=True)


def flame_forward(
    model: FlameModel,
    shape: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    pose: np.ndarray | None = None,
    eyelids: np.ndarray | None = None,
) -> FlameOutput:
    """Posed FLAME vertices. shape (B, ≤S), expression (B, ≤E), pose (B, 5, 3) or (B, 15), eyelids (B, 2).

    1-D inputs are treated as a batch of one. Missing trailing components are zero.
    """
    b = batch_size(shape, expression, eyelids, None if pose is None else np.asarray(pose).reshape(-1, 15))
    beta = _coefficients(shape, model.n_shape, b, "shape")
    psi = _coefficients(expression, model.n_expr, b, "expression")
    theta = _as_batch(pose, 3 * N_JOINTS, b).reshape(b, N_JOINTS, 3)

    v_shaped = model.v_template[None] + blend(model.shapedirs, beta) + blend(model.exprdirs, psi)
    if eyelids is not None and model.eyelid_left is not None:
        lids = _as_batch(eyelids, 2, b)
        v_shaped = v_shaped + lids[:, 0, None, None] * model.eyelid_left + lids[:, 1, None, None] * model.eyelid_right
    joints_rest = np.einsum("jv,bvc->bjc", model.j_regressor, v_shaped)

    rot = rodrigues(theta)  # (B, 5, 3, 3)
    pose_feature = (rot[:, 1:] - np.eye(3)).reshape(b, -1)  # (B, 36)
    v_posed = v_shaped + np.einsum("vck,bk->bvc", model.posedirs, pose_feature, optimize=True)

    world = chain_transforms(rot, joints_rest, model.parents)
    skin = world.copy()
    # Skinning moves rest-pose points: subtract each joint's rest position before its world transform.
    skin[..., :3, 3] -= np.einsum("bjrc,bjc->bjr", world[..., :3, :3], joints_rest)
    per_vertex = np.einsum("vj,bjrc->bvrc", model.lbs_weights, skin[:, :, :3, :], optimize=True)
    vertices = np.einsum("bvrc,bvc->bvr", per_vertex[..., :3], v_posed) + per_vertex[..., 3]
    return FlameOutput(vertices=vertices, joints=world[..., :3, 3], transforms=skin, rotations=rot, v_shaped=v_shaped)


def chain_transforms(rot: np.ndarray, joints: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """World transforms (B, J, 4, 4) of joints rotating about their rest positions along the kinematic tree."""
    b, n = joints.shape[:2]
    world = np.zeros((b, n, 4, 4))
    world[..., 3, 3] = 1.0
    for j in range(n):
        parent = parents[j]
        local = np.zeros((b, 4, 4))
        local[:, :3, :3] = rot[:, j]
        local[:, :3, 3] = joints[:, j] - (joints[:, parent] if parent >= 0 else 0.0)
        local[:, 3, 3] = 1.0
        world[:, j] = local if parent < 0 else world[:, parent] @ local
    return world


def surface_points(vertices: np.ndarray, faces: np.ndarray, face_idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Points on the mesh from triangle indices and barycentric weights; vertices (B, V, 3) (or any
    per-vertex values, e.g. normals). A sum over the three corners: einsum was 5× slower on texel counts."""
    corners = faces[face_idx]  # (..., 3)
    return sum(vertices[:, corners[..., k]] * bary[..., k, None] for k in range(3))


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (V, 3): the area-weighted sum of the normals of the triangles around each vertex."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def contour_rows(rotations: np.ndarray) -> np.ndarray:
    """Row of the dynamic contour embedding for each batch item, from the head's yaw.

    Yaw is that of global @ neck (DECA's `_find_dynamic_lmk_idx_and_bcoords`): rows 0..39 hold
    0..39 degrees, rows 40..78 hold -1..-39 degrees.
    """
    head = rotations[:, 0] @ rotations[:, NECK]
    sy = np.sqrt(head[:, 0, 0] ** 2 + head[:, 1, 0] ** 2)
    yaw = np.degrees(np.arctan2(-head[:, 2, 0], sy))
    deg = np.round(np.clip(yaw, -DYNAMIC_YAW_LIMIT, DYNAMIC_YAW_LIMIT)).astype(np.int64)
    return np.where(deg < 0, DYNAMIC_YAW_LIMIT - deg, deg)


def landmarks68(model: FlameModel, out: FlameOutput) -> np.ndarray:
    """The 68 iBUG landmarks (B, 68, 3): 17 yaw-dependent contour points, then the 51 static ones."""
    if not model.has_landmarks68:
        raise MissingAssetError(
            f"{model.source}: no 68-point landmark embedding; put flame_static_embedding.pkl and "
            "flame_dynamic_embedding.npy beside the model file"
        )
    rows = contour_rows(out.rotations)
    contour = np.stack(
        [
            surface_points(out.vertices[i : i + 1], model.faces, model.dynamic_lmk_faces[r], model.dynamic_lmk_bary[r])[
                0
            ]
            for i, r in enumerate(rows)
        ]
    )
    static = surface_points(out.vertices, model.faces, model.static_lmk_faces, model.static_lmk_bary)
    return np.concatenate([contour, static], axis=1)


def landmarks_mediapipe(model: FlameModel, out: FlameOutput) -> np.ndarray:
    """The 105 embedded MediaPipe points (B, 105, 3), in the order of `model.mediapipe_lmk_indices`."""
    if not model.has_mediapipe:
        raise MissingAssetError(
            f"{model.source}: no MediaPipe landmark embedding; put mediapipe_landmark_embedding.npz beside the model file"
        )
    return surface_points(out.vertices, model.faces, model.mediapipe_lmk_faces, model.mediapipe_lmk_bary)
