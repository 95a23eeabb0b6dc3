"""Geometry for bench/identity.py: ICT-FaceKit heads, point-to-triangle distances, NoW-style scoring and the
floor (FLAME fitted directly to a head's 3D surface). Uses scipy (bench only, not the add-on)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from facesmith.training.geometry import closest_on_triangles as barycentric_closest

ICT_PATH = Path(__file__).resolve().parents[2] / "shared" / "ict" / "ict_facekit.npz"
# iBUG-68 indices of NoW's 7 points: outer/inner eye corners, nose tip, mouth corners.
NOW_POINTS = np.array([36, 39, 42, 45, 30, 48, 54])
NOSE_TIP = 4  # position of iBUG 30 in NOW_POINTS
CROP_M = 0.095
SKIN_PARTS = ("face", "head_and_neck")  # the scan: outer skin only (no sockets, eyes, teeth, lashes)
HIDDEN_PARTS = ("lacrimal_fluid", "eye_blend", "eye_occlusion")  # ICT's transparent layers: not rendered


def triangulate(quads: np.ndarray) -> np.ndarray:
    """(F, 4) quads, -1 padded for triangles -> (T, 3) triangles."""
    tri = quads[quads[:, 3] < 0, :3]
    q = quads[quads[:, 3] >= 0]
    return np.concatenate([tri, q[:, [0, 1, 2]], q[:, [0, 2, 3]]])


class Ict:
    """ICT-FaceKit in metres: vertices for identity weights (N(0,1) each) and expression weights."""

    def __init__(self, path: Path = ICT_PATH) -> None:
        d = np.load(path)
        self.neutral = d["neutral"].astype(np.float32).ravel()
        self.id_deltas = d["identity_deltas"].astype(np.float32).reshape(100, -1)
        self.ex_deltas = d["expression_deltas"].astype(np.float32).reshape(len(d["expression_names"]), -1)
        self.expression_names = [str(n) for n in d["expression_names"]]
        self.expression_in_config = d["expression_in_config"]
        self.landmarks68 = d["landmarks_multipie68"].astype(int)
        self.faces = d["faces"].astype(int)
        self.part_names = [str(n) for n in d["part_names"]]
        self.part_vertex_ranges = d["part_vertex_ranges"]
        self.part_face_ranges = d["part_face_ranges"]
        self.subpart_names = [str(n) for n in d["subpart_names"]]
        self.subpart_vertex_ranges = d["subpart_vertex_ranges"] if "subpart_vertex_ranges" in d else None

    def vertices(self, w_id: np.ndarray, w_ex: np.ndarray | None = None) -> np.ndarray:
        v = self.neutral + w_id @ self.id_deltas
        if w_ex is not None:
            v = v + w_ex @ self.ex_deltas
        return v.reshape(-1, 3).astype(np.float64) / 100.0  # cm -> m

    def part_faces(self, names: tuple[str, ...], prefix: bool = False) -> np.ndarray:
        keep = [
            i for i, n in enumerate(self.part_names) if (n.startswith(names) if prefix else n in names)
        ]  # fmt: skip
        return np.concatenate([self.faces[slice(*self.part_face_ranges[i])] for i in keep])

    @cached_property
    def skin_triangles(self) -> np.ndarray:
        return triangulate(self.part_faces(SKIN_PARTS))

    @cached_property
    def render_triangles(self) -> np.ndarray:
        keep = tuple(n for n in self.part_names if not n.startswith(HIDDEN_PARTS))
        return triangulate(self.part_faces(keep))

    def vertex_part(self) -> np.ndarray:
        """(V,) index into part_names for each vertex (by vertex range)."""
        out = np.empty(len(self.neutral) // 3, int)
        for i, (a, b) in enumerate(self.part_vertex_ranges):
            out[a:b] = i
        return out


# --- closest points on triangle meshes ---------------------------------------------------------------


def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest points (N, 3) on triangles (a, b, c) to points p, and their barycentrics (N, 3)."""
    bary = barycentric_closest(p, a, b, c)
    return bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c, bary


@dataclass
class Surface:
    """A triangle mesh for exact point-to-triangle queries among the k triangles with the nearest centroids."""

    vertices: np.ndarray
    triangles: np.ndarray
    k: int = 32

    def __post_init__(self) -> None:
        self.corners = self.vertices[self.triangles]  # (T, 3, 3)
        self.tree = cKDTree(self.corners.mean(1))

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Closest surface points (N, 3), distances (N,), triangle ids (N,), barycentrics (N, 3)."""
        k = min(self.k, len(self.triangles))
        _, cand = self.tree.query(points, k=k)
        cand = cand.reshape(len(points), k)
        rep = np.repeat(points, k, axis=0)
        c = self.corners[cand.ravel()]
        q, bary = closest_on_triangles(rep, c[:, 0], c[:, 1], c[:, 2])
        dist = np.linalg.norm(q - rep, axis=1).reshape(len(points), k)
        best = dist.argmin(1)
        rows = np.arange(len(points))
        flat = rows * k + best
        return q[flat], dist[rows, best], cand[rows, best], bary[flat]

    def normals_at(self, tri: np.ndarray) -> np.ndarray:
        c = self.corners[tri]
        n = np.cross(c[:, 1] - c[:, 0], c[:, 2] - c[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """s, R, t minimising |s R src + t - dst|² (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / (a**2).sum(1).mean()) if with_scale else 1.0
    return s, rot, mu_d - s * rot @ mu_s


# --- the scan and NoW scoring ------------------------------------------------------------------------


@dataclass
class Scan:
    """An ICT head's skin (metres, ICT frame): the points scored (cropped to 95 mm of the nose tip), the 7 points."""

    points: np.ndarray  # (N, 3) cropped skin vertices
    landmarks7: np.ndarray  # (7, 3)
    surface: Surface  # the whole skin, for the floor fit


def make_scan(ict: Ict, verts: np.ndarray) -> Scan:
    tri = ict.skin_triangles
    used = np.unique(tri)
    lm7 = verts[ict.landmarks68[NOW_POINTS]]
    pts = verts[used]
    pts = pts[np.linalg.norm(pts - lm7[NOSE_TIP], axis=1) <= CROP_M]
    return Scan(pts, lm7, Surface(verts, tri))


def now_distances(scan: Scan, pred_vertices: np.ndarray, pred_triangles: np.ndarray, pred_lm7: np.ndarray,
                  icp_iters: int = 30) -> np.ndarray:  # fmt: skip
    """NoW: similarity from the predicted mesh's 7 points to the scan's, then rigid ICP of the mesh to the scan,
    then each scan point's distance (m) to the predicted surface (exact point-to-triangle)."""
    s, rot, t = umeyama(pred_lm7, scan.landmarks7, with_scale=True)
    mesh = Surface(pred_vertices @ (s * rot).T + t, pred_triangles)
    # Rigid ICP: the scan moves instead of the mesh (the same relative motion; distances are unchanged).
    pts = scan.points.copy()
    prev = np.inf
    for _ in range(icp_iters):
        q, dist, _, _ = mesh.closest(pts)
        _, r, tr = umeyama(pts, q, with_scale=False)
        pts = pts @ r.T + tr
        err = float(np.mean(dist))
        if prev - err < 1e-7:
            break
        prev = err
    return mesh.closest(pts)[1]


# --- where FLAME's points are on a rendered head ----------------------------------------------------------


@dataclass
class TruePoints:
    """FLAME surface points on a rendered ICT head, in one render's pixels."""

    uv: np.ndarray  # (N, 2) pixels
    gap: np.ndarray  # (N,) metres from the floor fit's point to the ICT skin: beyond a few mm, no true counterpart
    facing: np.ndarray  # (N,) bool: the skin there faces the camera (front-facing; other occluders not tested)


def true_image_points(model, ict: Ict, head: dict, vertex_ids: np.ndarray, yaws_deg) -> list[TruePoints]:
    """Where FLAME vertices `vertex_ids` really are in the renders of `head` (bench/identity.py's cached truth) at
    each yaw: a vertex's point on the ICT head is the closest skin point to the head's floor fit (FLAME fitted to the
    head in 3D), carried to the posed head by its triangle and barycentrics, turned by the view's yaw about the render
    pivot and projected by the render camera."""
    from facesmith.inference.camera import Camera

    w_ex = head["w_ex"] if head["w_ex"].size else None
    neutral, posed = ict.vertices(head["w_id"]), ict.vertices(head["w_id"], w_ex)
    floor = model.v_template + np.einsum("vik,k->vi", model.shapedirs, head["floor_shape"])
    s, rot, t = float(head["floor_scale"]), head["floor_rot"], head["floor_t"]
    _, gap, tri, bary = Surface(neutral, ict.skin_triangles).closest((floor[np.asarray(vertex_ids)] - t) @ rot / s)
    corners = posed[ict.skin_triangles[tri]]  # (N, 3 corners, 3)
    on_head = np.einsum("nj,nji->ni", bary, corners)
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    c = head["camera"]
    camera = Camera("perspective", c[:3], float(c[3]), (float(c[4]), float(c[5])))
    eye = np.array([-c[0], -c[1], c[2]])  # camera.py: the camera sits at (-tx, -ty, tz), looking down -z
    pivot, out = head["pivot"], []
    for yaw in yaws_deg:
        a = np.radians(yaw)
        turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        world = (on_head - pivot) @ turn.T + pivot
        facing = np.einsum("ni,ni->n", normal @ turn.T, eye - world) > 0
        out.append(TruePoints(camera.project(world), gap, facing))
    return out


# --- the floor: FLAME fitted to the 3D surface --------------------------------------------------------


@dataclass
class FloorFit:
    shape: np.ndarray  # β
    vertices: np.ndarray  # FLAME neutral (FLAME frame)
    to_flame: tuple[float, np.ndarray, np.ndarray]  # s, R, t: ICT metres -> FLAME frame
    rms_mm: float


def fit_floor(model, flame_lm7_fn, scan: Scan, face_mask: np.ndarray, iters: int = 25, prior_sigma_m: float = 1e-3,
              trim_m: float = 0.01, both_ways: bool = True) -> FloorFit:  # fmt: skip
    """FLAME (zero expression and pose, so vertices = template + shapedirs β) fitted to the scan's skin:
    similarity init from the 7 points, then alternating a similarity (scan -> FLAME) and a linear β solve
    (point-to-plane with a little point-to-point), Gaussian prior β ~ N(0, 1) with 1 mm residual noise."""
    tmpl = model.v_template[face_mask].astype(np.float64)
    dirs = model.shapedirs[face_mask].astype(np.float64)  # (M, 3, K)
    k = dirs.shape[2]
    beta = np.zeros(k)
    keep_tri = ~model.eyeball_triangles()
    s, rot, t = umeyama(scan.landmarks7, flame_lm7_fn(beta), with_scale=True)
    src = Surface(scan.surface.vertices, scan.surface.triangles)
    rms = np.nan
    for it in range(iters):
        v = tmpl + dirs @ beta
        # FLAME vertices into ICT metres, closest skin points there, then back
        inv = (v - t) @ rot / s
        q, dist, tri, _ = src.closest(inv)
        n = src.normals_at(tri) @ rot.T
        qf = s * q @ rot.T + t
        ok = dist * s < (trim_m if it > 2 else 3 * trim_m)
        # similarity from the matched scan points to the current FLAME vertices
        s, rot, t = umeyama(q[ok], v[ok], with_scale=True)
        qf = s * q @ rot.T + t
        n = src.normals_at(tri) @ rot.T
        # β: point-to-plane rows + 0.3 × point-to-point rows
        a_pl = np.einsum("mi,mik->mk", n[ok], dirs[ok])
        b_pl = np.einsum("mi,mi->m", n[ok], qf[ok] - tmpl[ok])
        a_pp = 0.3 * dirs[ok].reshape(-1, k)
        b_pp = 0.3 * (qf[ok] - tmpl[ok]).ravel()
        a = np.r_[a_pl, a_pp]
        b = np.r_[b_pl, b_pp]
        if both_ways:  # also the scored direction: scan points (95 mm crop) to the FLAME surface
            full = model.v_template + np.einsum("vik,k->vi", model.shapedirs, beta)
            mesh = Surface(full, model.faces[keep_tri])
            sp = s * scan.points @ rot.T + t
            _, d2, tri2, bary2 = mesh.closest(sp)
            ok2 = d2 < trim_m
            corners = model.faces[keep_tri][tri2[ok2]]  # (N, 3)
            n2 = mesh.normals_at(tri2[ok2])
            bw = bary2[ok2]
            d_dirs = np.einsum("nj,njik->nik", bw, model.shapedirs[corners].astype(np.float64))  # (N, 3, K)
            base = np.einsum("nj,nji->ni", bw, model.v_template[corners].astype(np.float64))
            a = np.r_[a, np.einsum("ni,nik->nk", n2, d_dirs)]
            b = np.r_[b, np.einsum("ni,ni->n", n2, sp[ok2] - base)]
        lam = prior_sigma_m**2
        beta = np.linalg.solve(a.T @ a + lam * np.eye(k), a.T @ b)
        rms = float(np.sqrt(np.mean((b_pl - a_pl @ beta) ** 2)) * 1000)
    verts = model.v_template + np.einsum("vik,k->vi", model.shapedirs, beta)
    return FloorFit(beta, verts, (s, rot, t), rms)


def flame_lm7(model, shape: np.ndarray) -> np.ndarray:
    """The seven NoW landmarks of FLAME's neutral head of identity `shape`."""
    from facesmith.inference import flame

    return flame.landmarks68(model, flame.flame_forward(model, shape))[0][NOW_POINTS]


def shape_distances(model, scan: Scan, shape: np.ndarray) -> np.ndarray:
    """now_distances of FLAME's neutral head of identity `shape` from `scan` (the benches' identity score)."""
    from facesmith.inference import flame

    verts = flame.flame_forward(model, shape).vertices[0]
    return now_distances(scan, verts, model.faces, flame_lm7(model, shape))
