"""The least-squares problem of fitting FLAME to 2D landmarks: residuals and analytic Jacobians.

Unknowns: shape β (shared by all photos of a person), and per photo expression ψ, global rotation,
jaw rotation and a camera. Neck stays at zero: from landmarks alone it is indistinguishable from the
global rotation (as in DECA). Eye gaze is solved afterwards from the iris centres.

For a fixed pose, posed FLAME vertices are affine in (β, ψ): joints are linear in the shaped mesh and
the skinning transforms are linear in the joints. So the β/ψ Jacobian is exact and cheap; the global
rotation has a closed-form Jacobian; only the 3 jaw angles use finite differences (pose correctives
make them non-linear). Residuals are in units of the face size, so the priors do not depend on
image resolution.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..camera import Camera, project
from ..flame.forward import JAW, contour_rows
from ..flame.model import FlameModel
from ..landmarks.embedding import Embedding
from ..options import FitOptions
from .rotations import rotation, rotation_to_axis_angle, skew
from .targets import Observation, Pin, make_targets, pin_targets

JAW_LIMITS = np.array([[-0.05, 0.6], [-0.15, 0.15], [-0.15, 0.15]])  # radians: open/close, side, twist


@dataclass
class PhotoState:
    expression: np.ndarray
    rotation: np.ndarray  # (3, 3) global
    jaw: np.ndarray  # (3,) axis-angle
    camera: Camera
    gaze: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))  # pitch, yaw of both eyes

    def copy(self) -> PhotoState:
        return PhotoState(self.expression.copy(), self.rotation.copy(), self.jaw.copy(), self.camera, self.gaze.copy())

    def pose(self) -> np.ndarray:
        """(5, 3) axis-angle: global, neck (0), jaw, eyes."""
        pose = np.zeros((5, 3))
        pose[0] = rotation_to_axis_angle(self.rotation)
        pose[JAW] = self.jaw
        pose[3] = pose[4] = [self.gaze[0], self.gaze[1], 0.0]
        return pose


@dataclass(frozen=True)
class SurfaceOperators:
    """Per surface point, the barycentric sums of the linear model, so no per-vertex work is left per iteration.

    For a point p = Σ_k b_k u_k over its triangle's corners k, with u = x + w_jaw (R_jaw − I)(x − J_jaw):
    p = X + (R_jaw − I)(XW − bw · J_jaw), where X = Σ b x and XW = Σ b w x are linear in β, ψ and the
    jaw's corrective features.
    """

    t: np.ndarray  # (L, 3) Σ b · template
    tw: np.ndarray  # (L, 3) Σ b w · template
    s: np.ndarray  # (L, 3, ns)
    sw: np.ndarray
    e: np.ndarray  # (L, 3, ne)
    ew: np.ndarray
    p: np.ndarray  # (L, 3, 9) jaw pose correctives
    pw: np.ndarray
    bw: np.ndarray  # (L,) Σ b w


def astuple_shallow(ops: SurfaceOperators) -> tuple[np.ndarray, ...]:
    return tuple(getattr(ops, f.name) for f in dataclasses.fields(ops))


def concat_operators(a: SurfaceOperators, b: SurfaceOperators) -> SurfaceOperators:
    """The surface points of `a` followed by those of `b`."""
    return SurfaceOperators(
        *(np.concatenate([x, y]) for x, y in zip(astuple_shallow(a), astuple_shallow(b), strict=True))
    )


class LandmarkFunction:
    """Posed surface points before the global rotation, with neck and eyes at rest, and their Jacobians.

    With global, neck and eyes at identity every skinning transform is the identity except the jaw's,
    so a vertex x moves to u = x + w_jaw (R_jaw − I)(x − J_jaw), x including the jaw's pose correctives.
    """

    def __init__(self, model: FlameModel, n_shape: int, n_expr: int) -> None:
        self.model = model
        self.ns, self.ne = min(n_shape, model.n_shape), min(n_expr, model.n_expr)
        m = model
        self.j0 = m.j_regressor @ m.v_template  # (5, 3)
        v = m.n_vertices
        self.js = (m.j_regressor @ m.shapedirs[:, :, : self.ns].reshape(v, -1)).reshape(5, 3, self.ns)
        self.je = (m.j_regressor @ m.exprdirs[:, :, : self.ne].reshape(v, -1)).reshape(5, 3, self.ne)
        self.jaw_dirs = m.posedirs[:, :, (JAW - 1) * 9 : JAW * 9]  # correctives driven by the jaw's R − I

    def joints(self, beta: np.ndarray, psi: np.ndarray) -> np.ndarray:
        """Rest joint positions (5, 3) of the shaped head."""
        return self.j0 + self.js @ beta + self.je @ psi

    def prepare(self, faces: np.ndarray, bary: np.ndarray) -> SurfaceOperators:
        m = self.model
        corners = m.faces[faces]  # (L, 3)
        w = m.lbs_weights[corners, JAW]  # (L, 3)
        bw = bary * w

        def sums(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            a = arr[corners]  # (L, 3 corners, ...)
            return np.einsum("lk...,lk->l...", a, bary), np.einsum("lk...,lk->l...", a, bw)

        t, tw = sums(m.v_template)
        s, sw = sums(m.shapedirs[:, :, : self.ns])
        e, ew = sums(m.exprdirs[:, :, : self.ne])
        p, pw = sums(self.jaw_dirs)
        return SurfaceOperators(t, tw, s, sw, e, ew, p, pw, bw.sum(axis=1))

    def points(self, ops: SurfaceOperators, beta, psi, jaw, jacobian: bool, linear: bool = True):
        """Surface points (L, 3) and root joint (3,); with `jacobian` also d/dβ (L, 3, ns), d/dψ (L, 3, ne),
        d/djaw (L, 3, 3) and the root's d/dβ (3, ns), d/dψ (3, ne)."""
        r_jaw = rotation(jaw)
        a = r_jaw - np.eye(3)
        f = a.reshape(-1)
        joints = self.joints(beta, psi)
        x = ops.t + ops.s @ beta + ops.e @ psi + ops.p @ f
        xw = ops.tw + ops.sw @ beta + ops.ew @ psi + ops.pw @ f
        lever = xw - ops.bw[:, None] * joints[JAW]
        pts = x + lever @ a.T
        if not jacobian:
            return pts, joints[0]
        if not linear:  # rigid stage: only the point positions' rotation Jacobian is needed
            return pts, joints[0], None, None, None, self.js[0], self.je[0]
        dp_b = ops.s + a @ (ops.sw - ops.bw[:, None, None] * self.js[JAW])  # batched (3,3) @ (L,3,ns)
        dp_e = ops.e + a @ (ops.ew - ops.bw[:, None, None] * self.je[JAW])
        eps = 1e-6
        dp_j = np.empty((len(pts), 3, 3))
        for k in range(3):  # dR/dθ_k of the 3×3 rotation by central differences, the rest in closed form
            step = np.zeros(3)
            step[k] = eps
            d_r = (rotation(jaw + step) - rotation(jaw - step)) / (2 * eps)
            df = d_r.reshape(-1)
            dp_j[:, :, k] = ops.p @ df + lever @ d_r.T + (ops.pw @ df) @ a.T
        return pts, joints[0], dp_b, dp_e, dp_j, self.js[0], self.je[0]


def dolly_jacobian(camera: Camera, world: np.ndarray) -> np.ndarray:
    """d pixels / d log f when focal length and distance scale together (f·e^d, tz·e^d): the face keeps its
    size and only its foreshortening changes (a "dolly zoom"), which is what tells the distance."""
    tx, ty, tz = camera.params
    x, y, z = world[:, 0] + tx, world[:, 1] + ty, world[:, 2]
    zc = np.maximum(tz - z, 1e-3)
    f = camera.focal
    return np.stack([-z * f * x / zc**2, z * f * y / zc**2], axis=1)


def scale_index(kind: str) -> int:
    """Where a camera of this kind keeps its scale in Camera.params: a perspective camera's distance tz (2), an
    orthographic one's px/m (0)."""
    return 2 if kind == "perspective" else 0


@dataclass(frozen=True)
class FitSolution:
    shape: np.ndarray
    photos: tuple[PhotoState, ...]
    residuals_px: tuple[np.ndarray, ...]  # per photo, per landmark used (static then contour; pins not included)
    landmark_names: tuple[tuple[str, ...], ...]
    pin_residuals_px: tuple[np.ndarray, ...] = ()  # per photo, per pin of that photo (in the order given)


class Problem:
    """The least-squares problem for one or several photos of one person, with the artist's pins (if any) as
    landmarks of their own σ (targets.Pin)."""

    def __init__(
        self,
        model: FlameModel,
        observations: list[Observation],
        options: FitOptions,
        photo_weights: np.ndarray | None = None,
        embedding: Embedding | None = None,
        pins: Sequence[Pin] = (),
    ) -> None:
        self.model, self.obs, self.opt = model, observations, options
        self.fn = LandmarkFunction(model, options.n_shape, options.n_expr)
        self.ns, self.ne = self.fn.ns, self.fn.ne
        self.landmark_targets = [make_targets(model, o, options, embedding) for o in observations]
        self.photo_w = np.ones(len(observations)) if photo_weights is None else np.asarray(photo_weights, float)
        self.block = self.ne + 10  # ψ, rotation increment, jaw, camera (3), log focal (perspective only)
        # A perspective camera's focal length is fitted too (when options.fit_focal): how strongly the face
        # foreshortens says how far the camera was; fixing it turns a wrong guess into a wrong shape.
        self.focal_free = options.fit_focal and options.camera == "perspective"
        # The camera's scale (a perspective camera's distance, an orthographic one's px/m): the tracker holds it
        # once a take's is known (inference/track.py), so the face's size is not re-guessed frame by frame.
        self.scale_free = True
        self.landmark_ops = [self.fn.prepare(t.faces, t.bary) for t in self.landmark_targets]
        self.prior_jac = self.prior_jacobian(len(observations))
        self.prior_gram = self.prior_jac.T @ self.prior_jac  # constant: the priors are linear
        self._set_pins(pins)

    def _set_pins(self, pins: Sequence[Pin]) -> None:
        """Targets and operators: the landmarks' (prepared once) followed by each photo's pins (a few points)."""
        self.pins = tuple(pins)
        self.targets, self.static_ops = [], []
        for p, (t, ops) in enumerate(zip(self.landmark_targets, self.landmark_ops, strict=True)):
            mine = [q for q in self.pins if q.photo == p]
            if mine:
                faces, bary = np.array([q.face for q in mine]), np.array([q.bary for q in mine], float)
                ops = concat_operators(ops, self.fn.prepare(faces, bary))
            self.targets.append(pin_targets(t, mine, self.opt.landmark_sigma, self.opt.pin_sigma))
            self.static_ops.append(ops)
        self._ops: dict[tuple[int, int], SurfaceOperators] = {}  # static + contour, per photo and contour row

    def with_pins(self, pins: Sequence[Pin]) -> Problem:
        """The same problem with these pins instead of its own; the landmarks' operators are shared, not rebuilt
        (what keeps a re-solve after a drag fast)."""
        out = copy.copy(self)
        out.photo_w = self.photo_w.copy()
        out._set_pins(pins)
        return out

    def correspondences(self, p: int, state: PhotoState):
        """Operators, target pixels and weights of photo p's landmarks, the contour chosen by the head's yaw."""
        t = self.targets[p]
        if not len(t.contour_points):  # dense landmarks: no contour
            return self.static_ops[p], t.points, t.weights
        row = int(contour_rows(np.stack([state.rotation, np.eye(3)])[None])[0])
        if (p, row) not in self._ops:
            contour = self.fn.prepare(self.model.dynamic_lmk_faces[row], self.model.dynamic_lmk_bary[row])
            self._ops[(p, row)] = concat_operators(self.static_ops[p], contour)
        target = np.concatenate([t.points, t.contour_points])
        return self._ops[(p, row)], target, np.concatenate([t.weights, t.contour_weights])

    def project_photo(self, beta, state: PhotoState, ops: SurfaceOperators):
        pts, root = self.fn.points(ops, beta, state.expression, state.jaw, jacobian=False)
        world = (pts - root) @ state.rotation.T + root
        return state.camera.project(world)

    def residuals(self, beta, states, robust, jacobian: bool, free_shape: bool, rigid: bool):
        """Stacked weighted residuals (and Jacobian over [β | per-photo blocks])."""
        rows, jac_rows = [], []
        n_cols = self.ns + self.block * len(states)
        errors = []
        for p, st in enumerate(states):
            ops, target, weight = self.correspondences(p, st)
            scale, sigma = self.row_scale(p, weight, robust)
            if jacobian:
                uv, jac = self.point_jacobian(p, beta, st, ops, free_shape, rigid)
                jac_rows.append((jac * scale[:, None, None]).reshape(-1, n_cols))
            else:
                uv = self.project_photo(beta, st, ops)
            rows.append(((uv - target) * scale[:, None]).ravel())
            errors.append(np.linalg.norm(uv - target, axis=1) / (self.obs[p].face_size * sigma))
        prior = self.prior_rows(beta, states)
        r = np.concatenate(rows + [prior])
        if not jacobian:
            return r, errors
        return r, np.concatenate(jac_rows + [self.prior_jac]), errors

    def row_scale(self, p: int, weight: np.ndarray, robust) -> tuple[np.ndarray, np.ndarray]:
        """Each of photo p's correspondences' residual scale (1 / px) and noise σ (fraction of the face size)."""
        sigma = self.noise(p, len(weight))
        trust = (1.0 if robust is None else robust[p]) * self.photo_w[p]
        # A pin is the artist's word: never an outlier (no Huber weight), whatever the photo's confidence.
        trust = np.where(self.pinned(p, len(weight)), 1.0, trust)
        return np.sqrt(weight * trust) / (self.obs[p].face_size * sigma), sigma

    def normal_equations(self, beta, states, robust, free_shape: bool, rigid: bool):
        """JᵀJ, Jᵀr and rᵀr of `residuals` without the whole Jacobian: photo p's rows touch only β and its own block,
        so each photo adds its (ns + block)² part (the dense product grows with the square of the photos)."""
        prior = self.prior_rows(beta, states)
        jtj, jtr, cost = self.prior_gram.copy(), self.prior_jac.T @ prior, float(prior @ prior)
        for p, st in enumerate(states):
            ops, target, weight = self.correspondences(p, st)
            scale, _ = self.row_scale(p, weight, robust)
            uv, local = self.local_jacobian(p, beta, st, ops, free_shape, rigid)
            j = (local * scale[:, None, None]).reshape(-1, local.shape[2])
            r = ((uv - target) * scale[:, None]).ravel()
            cols = np.r_[: self.ns, self.ns + p * self.block : self.ns + (p + 1) * self.block]
            jtj[np.ix_(cols, cols)] += j.T @ j
            jtr[cols] += j.T @ r
            cost += float(r @ r)
        return jtj, jtr, cost

    def point_jacobian(self, p: int, beta, st: PhotoState, ops: SurfaceOperators, free_shape: bool, rigid: bool):
        """Pixels (L, 2) of photo p's surface points `ops` and their Jacobian (L, 2, columns) over [β | per-photo
        blocks]; the landmark term and the photo-consistency term (photometric.py) share it."""
        uv, local = self.local_jacobian(p, beta, st, ops, free_shape, rigid)
        jac = np.zeros((len(uv), 2, self.ns + self.block * len(self.obs)))
        jac[:, :, : self.ns] = local[:, :, : self.ns]
        base = self.ns + p * self.block
        jac[:, :, base : base + self.block] = local[:, :, self.ns :]
        return uv, jac

    def local_jacobian(self, p: int, beta, st: PhotoState, ops: SurfaceOperators, free_shape: bool, rigid: bool):
        """As `point_jacobian`, over photo p's own columns only: [β | photo p's block], (L, 2, ns + block)."""
        pts, root, dp_b, dp_e, dp_j, droot_b, droot_e = self.fn.points(
            ops, beta, st.expression, st.jaw, True, linear=not rigid
        )
        rel = pts - root
        world = rel @ st.rotation.T + root
        uv, d_point, d_cam = project(st.camera, world)
        r_minus = np.eye(3) - st.rotation
        jac = np.zeros((len(pts), 2, self.ns + self.block))
        to_px = partial(np.matmul, d_point)  # d world (L,3,k) -> d pixels (L,2,k)
        if free_shape and not rigid:
            dw_b = st.rotation @ dp_b + (r_minus @ droot_b)[None]
            jac[:, :, : self.ns] = to_px(dw_b)
        base = self.ns
        if not rigid:
            dw_e = st.rotation @ dp_e + (r_minus @ droot_e)[None]
            jac[:, :, base : base + self.ne] = to_px(dw_e)
            jac[:, :, base + self.ne + 3 : base + self.ne + 6] = to_px(st.rotation @ dp_j)
        # d(R exp([δ]) rel)/dδ = -R [rel]×
        jac[:, :, base + self.ne : base + self.ne + 3] = to_px(-(st.rotation @ skew(rel)))
        jac[:, :, base + self.ne + 6 : base + self.ne + 9] = d_cam
        if st.camera.is_perspective:
            jac[:, :, base + self.ne + 9] = dolly_jacobian(st.camera, world)
        return uv, jac

    def noise(self, p: int, count: int) -> np.ndarray:
        """Each landmark's expected error, fraction of the face size: the dense network's own σ, or the
        fit's landmark_sigma (static and contour points alike)."""
        t = self.targets[p]
        static = np.full(len(t.points), self.opt.landmark_sigma) if t.noise is None else t.noise
        return np.r_[static, np.full(count - len(static), self.opt.landmark_sigma)]

    def pinned(self, p: int, count: int) -> np.ndarray:
        """(count,) bool: which of photo p's `count` correspondences (static, then contour) are pins."""
        out = np.zeros(count, bool)
        t = self.targets[p]
        if t.pinned is not None:
            out[: len(t.pinned)] = t.pinned
        return out

    def prior_rows(self, beta, states) -> np.ndarray:
        o = self.opt
        rows = [np.sqrt(o.shape_prior) * beta]
        for p, st in enumerate(states):
            rows += [np.sqrt(o.expr_prior) * st.expression, np.sqrt(o.jaw_prior) * st.jaw,
                     [np.sqrt(o.focal_prior) * self.log_focal_offset(p, st)]]  # fmt: skip
        return np.concatenate(rows)

    def log_focal_offset(self, p: int, st: PhotoState) -> float:
        """log(focal / the options' focal) of a perspective camera; 0 for orthographic ones."""
        if not st.camera.is_perspective:
            return 0.0
        return float(np.log(st.camera.focal / (self.opt.focal_factor * max(self.obs[p].image_size))))

    def prior_jacobian(self, n_photos: int) -> np.ndarray:
        o = self.opt
        n_cols = self.ns + self.block * n_photos
        blocks = [np.sqrt(o.shape_prior) * np.eye(self.ns, n_cols)]
        for p in range(n_photos):
            base = self.ns + p * self.block
            e = np.zeros((self.ne, n_cols))
            e[:, base : base + self.ne] = np.sqrt(o.expr_prior) * np.eye(self.ne)
            j = np.zeros((3, n_cols))
            j[:, base + self.ne + 3 : base + self.ne + 6] = np.sqrt(o.jaw_prior) * np.eye(3)
            f = np.zeros((1, n_cols))
            f[0, base + self.ne + 9] = np.sqrt(o.focal_prior)
            blocks += [e, j, f]
        return np.concatenate(blocks)

    def apply(self, beta, states, delta, free_shape: bool):
        new_beta = beta + delta[: self.ns] if free_shape else beta.copy()
        new_states = []
        for p, st in enumerate(states):
            d = delta[self.ns + p * self.block : self.ns + (p + 1) * self.block]
            s = st.copy()
            s.expression = st.expression + d[: self.ne]
            s.rotation = st.rotation @ rotation(d[self.ne : self.ne + 3])
            s.jaw = np.clip(st.jaw + d[self.ne + 3 : self.ne + 6], JAW_LIMITS[:, 0], JAW_LIMITS[:, 1])
            cam = st.camera.params + d[self.ne + 6 : self.ne + 9]
            if st.camera.is_perspective:
                # A longer lens from farther away gives the same face size: move tz with the focal length.
                ratio = float(np.exp(np.clip(d[self.ne + 9], -0.5, 0.5)))
                cam[2] = max(cam[2], 0.1)
                cam[2] *= ratio
                s.camera = Camera("perspective", cam, st.camera.focal * ratio, st.camera.centre)
            else:
                cam[0] = max(cam[0], 1e-3)
                s.camera = st.camera.with_params(cam)
            new_states.append(s)
        return new_beta, new_states

    def free_columns(self, n_photos: int, free_shape: bool, rigid: bool) -> np.ndarray:
        free = np.zeros(self.ns + self.block * n_photos, bool)
        free[: self.ns] = free_shape and not rigid
        for p in range(n_photos):
            base = self.ns + p * self.block
            if not rigid:
                free[base : base + self.ne] = True
                free[base + self.ne + 3 : base + self.ne + 6] = True
            free[base + self.ne : base + self.ne + 3] = True
            free[base + self.ne + 6 : base + self.ne + 9] = True
            if not self.scale_free:
                free[base + self.ne + scale_index(self.opt.camera) + 6] = False
            free[base + self.ne + 9] = self.focal_free and not rigid
        return free

    def landmark_residuals_px(self, beta, states) -> tuple[list[np.ndarray], list[tuple[str, ...]]]:
        """Per photo, each landmark's distance (px) to its fitted point, and the landmarks' names; pins apart."""
        res, names = [], []
        for p, (distance, pinned) in enumerate(self._distances_px(beta, states)):
            res.append(distance[~pinned])
            names.append(tuple(n for n, k in zip(self.targets[p].names, ~pinned, strict=True) if k))
        return res, names

    def pin_residuals_px(self, beta, states) -> list[np.ndarray]:
        """Per photo, each of its pins' distance (px) from where the artist put it."""
        return [distance[pinned] for distance, pinned in self._distances_px(beta, states)]

    def _distances_px(self, beta, states) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per photo, each correspondence's distance (px) to its fitted point, and which of them are pins."""
        out = []
        for p, st in enumerate(states):
            ops, target, _ = self.correspondences(p, st)
            distance = np.linalg.norm(self.project_photo(beta, st, ops) - target, axis=1)
            out.append((distance, self.pinned(p, len(target))))
        return out
