"""FLAME forward pass in torch, for training; mirrors `flame.py` and must agree with it (tested).

Only training imports this module; inference and the Blender extension never need torch.
"""

from __future__ import annotations

import torch
from torch import nn

from ..inference.flame.forward import DYNAMIC_YAW_LIMIT, NECK
from ..inference.flame.model import N_JOINTS, FlameModel


def rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from axis-angle (..., 3); the epsilon keeps gradients finite at zero."""
    theta = torch.linalg.norm(axis_angle + 1e-12, dim=-1, keepdim=True)
    k = axis_angle / theta
    kx, ky, kz = k.unbind(-1)
    zero = torch.zeros_like(kx)
    kmat = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], dim=-1).reshape(*k.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + torch.sin(theta)[..., None] * kmat + (1 - torch.cos(theta))[..., None] * (kmat @ kmat)


class FlameLayer(nn.Module):
    """FLAME as an nn.Module with the model arrays as buffers (moved with .to(device))."""

    def __init__(self, model: FlameModel, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.parents = [int(p) for p in model.parents]
        self.n_shape, self.n_expr = model.n_shape, model.n_expr
        for name in ("v_template", "shapedirs", "exprdirs", "posedirs", "j_regressor", "lbs_weights"):
            self.register_buffer(name, torch.as_tensor(getattr(model, name), dtype=dtype))
        self.register_buffer("faces", torch.as_tensor(model.faces, dtype=torch.long))
        if model.has_landmarks68:
            self.register_buffer("static_lmk_faces", torch.as_tensor(model.static_lmk_faces, dtype=torch.long))
            self.register_buffer("static_lmk_bary", torch.as_tensor(model.static_lmk_bary, dtype=dtype))
            self.register_buffer("dynamic_lmk_faces", torch.as_tensor(model.dynamic_lmk_faces, dtype=torch.long))
            self.register_buffer("dynamic_lmk_bary", torch.as_tensor(model.dynamic_lmk_bary, dtype=dtype))

    def forward(
        self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """shape (B, ≤S), expression (B, ≤E), pose (B, 5, 3) -> vertices (B, V, 3), joints (B, 5, 3), rotations."""
        b = pose.shape[0]
        v_shaped = (
            self.v_template
            + torch.einsum("vck,bk->bvc", self.shapedirs[..., : shape.shape[1]], shape)
            + torch.einsum("vck,bk->bvc", self.exprdirs[..., : expression.shape[1]], expression)
        )
        joints_rest = torch.einsum("jv,bvc->bjc", self.j_regressor, v_shaped)
        rot = rodrigues(pose.reshape(b, N_JOINTS, 3))
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(b, -1)
        v_posed = v_shaped + torch.einsum("vck,bk->bvc", self.posedirs, pose_feature)

        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=rot.dtype, device=rot.device).expand(b, 1, 4)
        world: list[torch.Tensor] = []
        for j, parent in enumerate(self.parents):
            offset = joints_rest[:, j] - (joints_rest[:, parent] if parent >= 0 else 0.0)
            local = torch.cat([torch.cat([rot[:, j], offset[..., None]], dim=2), bottom], dim=1)
            world.append(local if parent < 0 else world[parent] @ local)
        world_t = torch.stack(world, dim=1)  # (B, J, 4, 4)
        rest_shift = torch.einsum("bjrc,bjc->bjr", world_t[..., :3, :3], joints_rest)
        skin = torch.cat([world_t[..., :3, :3], (world_t[..., :3, 3] - rest_shift)[..., None]], dim=-1)
        per_vertex = torch.einsum("vj,bjrc->bvrc", self.lbs_weights, skin)
        vertices = torch.einsum("bvrc,bvc->bvr", per_vertex[..., :3], v_posed) + per_vertex[..., 3]
        return vertices, world_t[..., :3, 3], rot

    def landmarks68(self, vertices: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
        """The 68 iBUG landmarks (B, 68, 3), contour rows chosen by yaw as in `flame.contour_rows`."""
        head = rot[:, 0] @ rot[:, NECK]
        yaw = torch.rad2deg(torch.atan2(-head[:, 2, 0], torch.sqrt(head[:, 0, 0] ** 2 + head[:, 1, 0] ** 2)))
        deg = torch.round(torch.clamp(yaw, -DYNAMIC_YAW_LIMIT, DYNAMIC_YAW_LIMIT)).long()
        rows = torch.where(deg < 0, DYNAMIC_YAW_LIMIT - deg, deg)
        faces_idx = torch.cat([self.dynamic_lmk_faces[rows], self.static_lmk_faces.expand(len(rows), -1)], dim=1)
        bary = torch.cat([self.dynamic_lmk_bary[rows], self.static_lmk_bary.expand(len(rows), -1, -1)], dim=1)
        corners = vertices[torch.arange(len(rows), device=vertices.device)[:, None, None], self.faces[faces_idx]]
        return torch.einsum("blkc,blk->blc", corners, bary)
