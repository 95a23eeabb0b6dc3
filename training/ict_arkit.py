"""ARKit blendshapes for FLAME's mesh, moved over from ICT-FaceKit (writes assets/ict_arkit.npz).

    python -m facesmith.training.ict_arkit --ict ../shared/ict/ict_facekit.npz -o assets/ict_arkit.npz
    (--ict also takes ICT-FaceKit's own FaceXModel/ folder: training/ict_source.py)

1. Similarity (Umeyama, scale + rotation + translation) from ICT's neutral (cm) to FLAME's template
   (metres) on the 68 iBUG landmarks both define (FLAME: `landmarks68` of the template at zero pose;
   ICT: `landmarks_multipie68`).
2. Non-rigid registration of FLAME's template onto ICT's skin surface (ICT parts face, head_and_neck,
   mouth_socket and the two eye sockets: one connected surface; no eyes, teeth, lashes). A few rounds of
   closest-surface-point matching (normals must agree, far matches dropped) with a Laplacian
   regulariser whose weight steps down (optimal-step NICP-like), plus the 68 landmarks as soft
   constraints. Data terms only on FLAME's face region (`regions.face_region`).
3. Correspondence: each FLAME vertex → closest point on ICT's triangulated skin (quads split in two):
   triangle + barycentric weights. Valid: not an eyeball vertex and within `MAX_DISTANCE_M` of ICT
   (the back of the head and neck match too, where ICT's deltas are ~0 anyway).
4. Keys: each ICT expression delta sampled at the correspondence, times the similarity's s·R (cm → m
   and ICT's head size → FLAME's), zero at invalid vertices. ICT's `_L/_R` become ARKit's `Left/Right`:
   both ICT and FLAME have +x on the subject's left and so does ARKit's "Left" (the subject's left),
   so no mirroring; checked on eyeBlink (see `check_sides`). browInnerUp and cheekPuff are one key in
   ARKit: the sum of ICT's L and R halves. tongueOut has no ICT shape and is absent (not invented).

This is delta transfer at each FLAME vertex of the template, not full deformation transfer: a fitted head
gets the deltas scaled per region by its eye distance / mouth width (inference/arkit.py `key_scales`). jawOpen is ICT's full shape, which includes the jaw's own rotation:
it is a shape key alternative to the `jaw` bone, not an addition to it (see inference/arkit.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from ..inference.arkit import ARKIT_NAMES, FORMAT
from ..inference.flame.forward import contour_rows, flame_forward, landmarks68, vertex_normals
from ..inference.flame.model import FlameModel
from ..inference.flame.regions import face_region
from .geometry import closest_on_triangles
from .ict_source import build_main, load_ict, source_sha256

log = logging.getLogger(__name__)

SKIN_PARTS = ("face", "head_and_neck", "mouth_socket", "eye_socket_left", "eye_socket_right")
MAX_DISTANCE_M = 0.004  # final correspondence farther than this from ICT's surface: no motion
MATCH_DISTANCE_M = 0.02  # matches farther than this are dropped during registration
STIFFNESS = (30.0, 10.0, 3.0, 1.0, 0.3)
ROUNDS = 4  # closest-point rounds per stage
# ARKit keys that ICT splits into two halves: the sum of both.
MERGED = {"browInnerUp": ("browInnerUp_L", "browInnerUp_R"), "cheekPuff": ("cheekPuff_L", "cheekPuff_R")}


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising Σ |s R src + t − dst|²."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, d, vt = np.linalg.svd(b.T @ a / len(src))
    e = np.eye(3)
    e[2, 2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ e @ vt
    s = float((d * e.diagonal()).sum() / (a**2).sum(1).mean())
    return s, rot, md - s * rot @ ms


def triangulate(quads: np.ndarray) -> np.ndarray:
    """ICT faces (F, 4) with −1 padding for triangles → triangles (0,1,2), (0,2,3)."""
    tri = [quads[:, [0, 1, 2]], quads[quads[:, 3] >= 0][:, [0, 2, 3]]]
    return np.concatenate(tri)


class Surface:
    """A triangle mesh with closest-point queries (candidates: triangles with the nearest centroids)."""

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, candidates: int = 24):
        self.v, self.t = vertices, triangles
        self.tree = cKDTree(vertices[triangles].mean(1))
        self.k = candidates
        fn = np.cross(
            vertices[triangles[:, 1]] - vertices[triangles[:, 0]], vertices[triangles[:, 2]] - vertices[triangles[:, 0]]
        )
        self.face_normals = fn / np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-15)

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Triangle (N,), barycentric (N, 3) and the point (N, 3) nearest each query."""
        _, cand = self.tree.query(points, self.k)
        n = len(points)
        p = np.repeat(points, self.k, axis=0)
        tri = self.t[cand.ravel()]
        a, b, c = self.v[tri[:, 0]], self.v[tri[:, 1]], self.v[tri[:, 2]]
        bary = closest_on_triangles(p, a, b, c)
        q = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
        d = ((q - p) ** 2).sum(1).reshape(n, self.k)
        best = d.argmin(1)
        rows = np.arange(n) * self.k + best
        return cand[np.arange(n), best], bary[rows], q[rows]


def laplacian(n: int, faces: np.ndarray) -> sp.csr_matrix:
    """Uniform graph Laplacian I − D⁻¹A of the mesh's edges."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel()
    return (sp.identity(n) - sp.diags(1 / np.maximum(deg, 1)) @ adj).tocsr()


def landmark_matrix(model: FlameModel, out) -> sp.csr_matrix:
    """(68, V) rows whose product with the vertices gives FLAME's 68 landmarks at zero pose."""
    rows = contour_rows(out.rotations)[0]
    faces = np.concatenate([model.dynamic_lmk_faces[rows], model.static_lmk_faces])
    bary = np.concatenate([model.dynamic_lmk_bary[rows], model.static_lmk_bary])
    tri = model.faces[faces]
    r = np.repeat(np.arange(68), 3)
    return sp.csr_matrix((bary.ravel(), (r, tri.ravel())), shape=(68, model.n_vertices))


def register(model: FlameModel, target: Surface, ict_landmarks: np.ndarray, region: np.ndarray) -> np.ndarray:
    """FLAME's template deformed onto `target` (FLAME frame): Laplacian-regularised closest-point rounds."""
    out = flame_forward(model)
    x0 = out.vertices[0].astype(np.float64)
    n = len(x0)
    lap = laplacian(n, model.faces)
    lmk = landmark_matrix(model, out)
    delta0 = lap @ x0
    anchor = 1e-3  # keeps disconnected parts (eyeballs) and unconstrained vertices near the template
    x = x0.copy()
    lmk_weight = 1.0
    for alpha in STIFFNESS:
        lt_l = (lap.T @ lap) * alpha
        for _ in range(ROUNDS):
            tri, _, q = target.closest(x)
            tri_normals = target.face_normals[tri]
            normals = vertex_normals(x, model.faces)
            dist = np.linalg.norm(q - x, axis=1)
            w = region & (dist < MATCH_DISTANCE_M) & ((normals * tri_normals).sum(1) > 0.5)
            wd = sp.diags(w.astype(np.float64))
            a = (wd + lt_l + lmk_weight * (lmk.T @ lmk) + anchor * sp.identity(n)).tocsc()
            rhs = wd @ q + alpha * (lap.T @ delta0) + lmk_weight * (lmk.T @ ict_landmarks) + anchor * x0
            solver = splu(a)
            x = np.stack([solver.solve(rhs[:, k]) for k in range(3)], 1)
        lmk_weight *= 0.5  # landmarks guide the start; the surface decides the end
        log.info("stiffness %.2f: %d matched, median %.2f mm", alpha, w.sum(), 1e3 * np.median(dist[w]))
    return x


def check_sides(ict: dict, model: FlameModel) -> None:
    """ICT's eyeBlink_L must close the eye on FLAME's eye_L side (+x, the subject's left = ARKit's Left)."""
    names = list(ict["expression_names"])
    blink = ict["expression_deltas"][names.index("eyeBlink_L")].astype(np.float64)
    moved = np.linalg.norm(blink, axis=1) > 0.05
    ict_x = ict["neutral"][moved, 0].mean()
    eye_l_x = (model.j_regressor @ model.v_template)[3, 0]
    assert ict_x > 0 and eye_l_x > 0, (ict_x, eye_l_x)
    log.info("eyeBlink_L moves ICT x = %+.2f cm on average; FLAME eye_L joint at x = %+.3f m", ict_x, eye_l_x)


def arkit_name(ict_name: str) -> str:
    if ict_name.endswith("_L"):
        return ict_name[:-2] + "Left"
    if ict_name.endswith("_R"):
        return ict_name[:-2] + "Right"
    return ict_name


def build(model: FlameModel, ict_path: Path) -> dict[str, np.ndarray]:
    ict = load_ict(ict_path)
    check_sides(ict, model)
    neutral = ict["neutral"].astype(np.float64)
    out = flame_forward(model)
    flame_lmk = landmarks68(model, out)[0]
    s, rot, t = umeyama(neutral[ict["landmarks_multipie68"]], flame_lmk)
    ict_v = neutral @ (s * rot).T + t
    lmk_res = np.linalg.norm(ict_v[ict["landmarks_multipie68"]] - flame_lmk, axis=1)
    log.info("similarity: scale %.5f m/cm, landmark residual median %.1f mm", s, 1e3 * np.median(lmk_res))

    parts = list(ict["part_names"])
    ranges = ict["part_face_ranges"]
    keep = np.zeros(len(ict["faces"]), bool)
    for p in SKIN_PARTS:
        lo, hi = ranges[parts.index(p)]
        keep[lo:hi] = True
    triangles = triangulate(ict["faces"][keep])
    target = Surface(ict_v, triangles)

    region = face_region(model)
    registered = register(model, target, ict_v[ict["landmarks_multipie68"]], region)
    tri, bary, q = target.closest(registered)
    bary = np.clip(bary, 0, 1)
    bary /= bary.sum(1, keepdims=True)
    dist = np.linalg.norm(q - registered, axis=1)
    eyeballs = model.lbs_weights[:, 3:5].sum(axis=1) > 0.5
    valid = ~eyeballs & (dist < MAX_DISTANCE_M)
    # Residual of the registration: FLAME's face region, registered surface to ICT's surface.
    res = dist[region]
    # Shape difference that registration removed: template (after similarity) to ICT's surface.
    _, _, q0 = target.closest(out.vertices[0])
    before = np.linalg.norm(q0 - out.vertices[0], axis=1)[region]
    lmk_after = np.linalg.norm(landmark_matrix(model, out) @ registered - ict_v[ict["landmarks_multipie68"]], axis=1)
    log.info(
        "landmarks after registration: median %.1f mm, max %.1f mm", 1e3 * np.median(lmk_after), 1e3 * lmk_after.max()
    )
    log.info(
        "residual on the face region: median %.2f mm, p95 %.2f mm (before registration %.2f / %.2f); %d valid vertices",
        1e3 * np.median(res), 1e3 * np.percentile(res, 95), 1e3 * np.median(before), 1e3 * np.percentile(before, 95),
        valid.sum(),
    )  # fmt: skip

    corners = triangles[tri]  # (V, 3) ICT vertex ids
    names_ict = list(ict["expression_names"])
    in_config = ict["expression_in_config"]
    lin = s * rot  # ICT delta (cm) → FLAME frame (m)

    def transfer(name: str) -> np.ndarray:
        d = ict["expression_deltas"][names_ict.index(name)].astype(np.float64)
        sampled = (d[corners] * bary[..., None]).sum(1)
        return np.where(valid[:, None], sampled @ lin.T, 0.0)

    keys: dict[str, np.ndarray] = {}
    merged_parts = {p for pair in MERGED.values() for p in pair}
    for name, ok in zip(names_ict, in_config, strict=True):
        if not ok or name in merged_parts:
            continue
        keys[arkit_name(name)] = transfer(name)
    for name, (left, right) in MERGED.items():
        keys[name] = transfer(left) + transfer(right)
    unknown = set(keys) - set(ARKIT_NAMES)
    assert not unknown, unknown
    names = [n for n in ARKIT_NAMES if n in keys]
    deltas = np.stack([keys[n] for n in names]).astype(np.float16)
    return {
        "format": np.array(FORMAT),
        "names": np.array(names),
        "missing": np.array([n for n in ARKIT_NAMES if n not in keys]),
        "deltas": deltas,
        "n_vertices": np.array(model.n_vertices, np.int32),
        "ict_triangles": corners.astype(np.int32),
        "bary": bary.astype(np.float32),
        "valid": valid,
        "distance_m": dist.astype(np.float32),
        "similarity_scale": np.array(s),
        "similarity_rotation": rot,
        "similarity_translation": t,
        "residual_median_mm": np.array(1e3 * np.median(res)),
        "residual_p95_mm": np.array(1e3 * np.percentile(res, 95)),
        "landmark_residual_median_mm": np.array(1e3 * np.median(lmk_res)),  # similarity only
        "landmark_registered_median_mm": np.array(1e3 * np.median(lmk_after)),
        "ict_sha256": np.array(source_sha256(ict_path)),
    }


def main(argv: list[str] | None = None) -> int:
    return build_main(
        build, __doc__.splitlines()[0], argv, lambda a: f"{len(a['names'])} keys, missing {list(a['missing'])}, "
    )


if __name__ == "__main__":
    raise SystemExit(main())
