"""A dense MediaPipe → FLAME embedding, learned from photos.

FLAME's published MediaPipe embedding covers 105 of MediaPipe's 468 mesh points. Here every other
point is located on the FLAME surface from real portraits: fit FLAME to a photo, cast each detected
MediaPipe point along the view ray onto the fitted mesh, carry the hit (triangle + barycentric
weights) to the mean template, and take the median over all photos. Points seen only at grazing angles
(the face outline) or scattered widely are left out. The table (triangle index + barycentric weights
per MediaPipe point) is topology data only; it holds no FLAME vertex data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..flame.forward import vertex_normals
from ..flame.model import FlameModel

N_MESH_POINTS = 468  # MediaPipe's mesh without the 10 iris points
MIN_FACING = 0.35  # |normal · view| below this is a grazing hit: depth along the ray is unreliable
MAX_SPREAD_M = 0.004  # median distance of the hits to their median, above this the point is not stable


@dataclass(frozen=True)
class Embedding:
    indices: np.ndarray  # (M,) MediaPipe mesh indices
    faces: np.ndarray  # (M,) FLAME triangles
    bary: np.ndarray  # (M, 3)


def cast_onto_mesh(uv: np.ndarray, depth: np.ndarray, faces: np.ndarray, queries: np.ndarray):
    """For each query pixel, the front-most projected triangle containing it: (triangle or -1, barycentric).

    uv (V, 2) projected vertices in pixels (y down); depth (V,) larger is nearer the camera.
    """
    tri = uv[faces]  # (F, 3, 2)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    front = det < 0  # counter-clockwise in y-up space = facing the camera
    idx = np.flatnonzero(front & (np.abs(det) > 1e-12))
    tri, e1, e2, det = tri[idx], e1[idx], e2[idx], det[idx]
    d = queries[:, None, :] - tri[None, :, 0]  # (Q, F, 2)
    b1 = (d[..., 0] * e2[:, 1] - d[..., 1] * e2[:, 0]) / det
    b2 = (e1[:, 0] * d[..., 1] - e1[:, 1] * d[..., 0]) / det
    b0 = 1.0 - b1 - b2
    inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    z = depth[faces[idx]]
    hit_depth = np.where(inside, b0 * z[:, 0] + b1 * z[:, 1] + b2 * z[:, 2], -np.inf)
    best = np.argmax(hit_depth, axis=1)
    found = np.isfinite(hit_depth[np.arange(len(queries)), best])
    rows = np.arange(len(queries))
    bary = np.stack([b0[rows, best], b1[rows, best], b2[rows, best]], axis=1)
    return np.where(found, idx[best], -1), bary


def closest_surface_point(model: FlameModel, point: np.ndarray, candidates: int = 12) -> tuple[int, np.ndarray]:
    """Triangle and barycentric weights of the template surface point nearest to `point`."""
    verts = model.v_template
    near = np.argsort(np.linalg.norm(verts - point, axis=1))[:candidates]
    faces = np.flatnonzero(np.isin(model.faces, near).any(axis=1))
    best, best_d = (-1, np.zeros(3)), np.inf
    for f in faces:
        a, b, c = verts[model.faces[f]]
        m = np.stack([b - a, c - a], axis=1)
        coef, *_ = np.linalg.lstsq(m, point - a, rcond=None)
        bary = np.clip(np.array([1 - coef.sum(), coef[0], coef[1]]), 0.0, None)
        bary /= bary.sum()
        dist = np.linalg.norm(bary @ verts[model.faces[f]] - point)
        if dist < best_d:
            best, best_d = (int(f), bary), dist
    return best


@dataclass
class HitCollector:
    """Accumulates, per MediaPipe point, where it lands on the mean template across photos."""

    model: FlameModel

    def __post_init__(self) -> None:
        self.points: list[list[np.ndarray]] = [[] for _ in range(N_MESH_POINTS)]
        self.grazing = np.zeros(N_MESH_POINTS)
        self.seen = np.zeros(N_MESH_POINTS)

    def add(
        self,
        vertices: np.ndarray,
        project: Callable[[np.ndarray], np.ndarray],
        view_dir: np.ndarray,
        mp_points: np.ndarray,
    ) -> None:
        """vertices: fitted posed mesh; project: metres -> pixels; view_dir: unit vector towards the camera."""
        m = self.model
        uv = project(vertices)
        faces, bary = cast_onto_mesh(uv, vertices @ view_dir, m.faces, mp_points[:N_MESH_POINTS])
        normals = vertex_normals(vertices, m.faces)
        # Eyeballs turn with the gaze, which the landmark fit leaves at rest: no point may sit on one.
        on_eyeball = m.eyeball_triangles()
        for i, (f, b) in enumerate(zip(faces, bary, strict=True)):
            if f < 0 or on_eyeball[f]:
                continue
            self.seen[i] += 1
            n = b @ normals[m.faces[f]]
            if abs(n @ view_dir) < MIN_FACING:
                self.grazing[i] += 1
                continue
            self.points[i].append(b @ m.v_template[m.faces[f]])

    def embedding(self, exclude: Iterable[int] = ()) -> Embedding:
        keep_idx, keep_f, keep_b = [], [], []
        skip = set(exclude)
        for i, pts in enumerate(self.points):
            if i in skip or len(pts) < max(3, 0.5 * self.seen[i]):
                continue
            pts = np.asarray(pts)
            centre = np.median(pts, axis=0)
            if np.median(np.linalg.norm(pts - centre, axis=1)) > MAX_SPREAD_M:
                continue
            f, b = closest_surface_point(self.model, centre)
            keep_idx.append(i)
            keep_f.append(f)
            keep_b.append(b)
        return Embedding(np.array(keep_idx), np.array(keep_f), np.array(keep_b))


def save_embedding(emb: Embedding, path, note: str) -> None:
    import json

    from ..files import atomic_write

    meta = json.dumps({"format": "facesmith-mp-embedding-1", "note": note})
    atomic_write(
        path,
        lambda f: np.savez_compressed(
            f,
            meta=np.array(meta),
            indices=emb.indices.astype(np.int32),
            faces=emb.faces.astype(np.int32),
            bary=emb.bary.astype(np.float32),
        ),
    )


def load_embedding(path, model: FlameModel) -> Embedding:
    """Read a learned embedding and check it fits the model's mesh."""
    from ..errors import ModelFileError
    from ..flame.io import read_bytes

    read_bytes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            emb = Embedding(z["indices"].astype(np.int64), z["faces"].astype(np.int64), z["bary"].astype(np.float64))
    except (KeyError, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(path, f"not a MediaPipe embedding ({exc})") from None
    ok = (
        emb.indices.shape == emb.faces.shape == emb.bary.shape[:1]
        and emb.bary.shape[1:] == (3,)
        and (emb.indices.size == 0 or (emb.indices.min() >= 0 and emb.indices.max() < N_MESH_POINTS))
        and (emb.faces.size == 0 or (emb.faces.min() >= 0 and emb.faces.max() < model.n_faces))
    )
    if not ok:
        raise ModelFileError(path, f"embedding does not fit this model's mesh ({model.n_faces} triangles)")
    return emb
