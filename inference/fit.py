"""Fitting FLAME to 2D landmarks: robust Levenberg–Marquardt with analytic Jacobians.

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

import dataclasses
import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from .camera import Camera, project
from .detect import MEDIAPIPE_TO_IBUG68, FaceLandmarks
from .flame import JAW, contour_rows
from .flame_model import FlameModel
from .mp_embedding import Embedding

# MediaPipe mesh indices on the lips and the nose (Deng et al. weight mouth and nose landmarks up).
MEDIAPIPE_LIPS = frozenset(
    {
        0,
        13,
        14,
        17,
        37,
        39,
        40,
        61,
        78,
        80,
        81,
        82,
        84,
        87,
        88,
        91,
        95,
        146,
        178,
        181,
        185,
        191,
        267,
        269,
        270,
        291,
        308,
        310,
        311,
        312,
        314,
        317,
        318,
        321,
        324,
        375,
        402,
        405,
        409,
        415,
    }
)
MEDIAPIPE_NOSE = frozenset(
    {
        1,
        2,
        4,
        5,
        6,
        19,
        45,
        48,
        64,
        75,
        79,
        94,
        97,
        98,
        102,
        115,
        129,
        168,
        195,
        197,
        218,
        219,
        220,
        237,
        275,
        278,
        294,
        305,
        309,
        326,
        327,
        331,
        344,
        358,
        438,
        439,
        440,
        457,
    }
)
IBUG_NOSE_MOUTH = np.r_[27:36, 48:68]
JAW_LIMITS = np.array([[-0.05, 0.6], [-0.15, 0.15], [-0.15, 0.15]])  # radians: open/close, side, twist
GAZE_LIMIT = 0.6  # radians, each axis


@dataclass(frozen=True)
class FitOptions:
    n_shape: int = 100  # capped by the model
    n_expr: int = 50
    camera: str = "orthographic"
    focal_factor: float = 1.6  # perspective: focal length = factor × long image side (about a 50 mm lens)
    # Defaults chosen on bench/synthetic_fit.py (see the closing note of issue B for the grid).
    landmark_sigma: float = 0.015  # expected landmark noise, fraction of face size (≈2 px on a 250 px face)
    robust_k: float = 1.5  # Huber threshold in sigmas: landmarks further off count linearly (outliers)
    mouth_nose_weight: float = 5.0  # Deng et al. 2019 use 20; 5 measured better with MediaPipe's dense lips/nose
    contour_weight: float = 1.0
    shape_prior: float = 1.0  # × ||β||² (β is unit-variance in FLAME)
    expr_prior: float = 1.0  # × ||ψ||²
    jaw_prior: float = 10.0  # × ||jaw||² (radians)
    rigid_iterations: int = 6
    iterations: int = 25
    fit_gaze: bool = True


@dataclass(frozen=True)
class Observation:
    """Landmarks of one face in original-photo pixels, and what they correspond to on FLAME."""

    points: np.ndarray  # (N, 2)
    scheme: str  # "mediapipe478" or "ibug68"
    image_size: tuple[int, int]  # (width, height)
    iris: np.ndarray | None = None  # (2, 2) subject's right, left iris centres

    @staticmethod
    def from_face(face: FaceLandmarks, to_original, image_size: tuple[int, int]) -> Observation:
        iris = face.iris_centres()
        return Observation(
            to_original(face.points), face.scheme, image_size, None if iris is None else to_original(iris)
        )

    @property
    def face_size(self) -> float:
        pts = self.ibug68()
        span = pts.max(0) - pts.min(0)
        return float(np.sqrt(max(span[0], 1.0) * max(span[1], 1.0)))

    def ibug68(self) -> np.ndarray:
        return self.points if self.scheme == "ibug68" else self.points[MEDIAPIPE_TO_IBUG68]


@dataclass(frozen=True)
class Targets:
    """Static correspondences (fixed surface points) and the 17 contour points (chosen by yaw)."""

    faces: np.ndarray  # (Ls,)
    bary: np.ndarray  # (Ls, 3)
    points: np.ndarray  # (Ls, 2)
    weights: np.ndarray  # (Ls,)
    contour_points: np.ndarray  # (17, 2)
    contour_weights: np.ndarray  # (17,)
    names: tuple[str, ...]  # one label per landmark: "mp:<index>" or "ibug:<index>", static first


def mediapipe_embedding(model: FlameModel, learned: Embedding | None) -> Embedding | None:
    """The learned MediaPipe embedding, completed by FLAME's own 105-point one for points it lacks.

    The learned one wins where both exist: it was measured against true geometry under MediaPipe itself.
    """
    if not model.has_mediapipe:
        return learned
    official = Embedding(model.mediapipe_lmk_indices, model.mediapipe_lmk_faces, model.mediapipe_lmk_bary)
    if learned is None:
        return official
    rest = ~np.isin(official.indices, learned.indices)
    return Embedding(
        np.r_[learned.indices, official.indices[rest]],
        np.r_[learned.faces, official.faces[rest]],
        np.r_[learned.bary, official.bary[rest]],
    )


def make_targets(
    model: FlameModel, obs: Observation, options: FitOptions, embedding: Embedding | None = None
) -> Targets:
    ibug = obs.ibug68()
    contour_w = np.full(17, options.contour_weight)
    emb = mediapipe_embedding(model, embedding)
    if obs.scheme == "mediapipe478" and emb is not None:
        # MediaPipe points that stand in for the jaw line follow FLAME's contour, not a fixed surface point.
        keep = ~np.isin(emb.indices, MEDIAPIPE_TO_IBUG68[:17])
        idx, faces, bary = emb.indices[keep], emb.faces[keep], emb.bary[keep]
        weights = np.array(
            [options.mouth_nose_weight if i in MEDIAPIPE_LIPS or i in MEDIAPIPE_NOSE else 1.0 for i in idx]
        )
        names = tuple(f"mp:{i}" for i in idx) + tuple(f"ibug:{i}" for i in range(17))
        return Targets(faces, bary, obs.points[idx], weights, ibug[:17], contour_w, names)
    weights = np.ones(51)
    weights[IBUG_NOSE_MOUTH - 17] = options.mouth_nose_weight
    names = tuple(f"ibug:{i}" for i in range(17, 68)) + tuple(f"ibug:{i}" for i in range(17))
    return Targets(model.static_lmk_faces, model.static_lmk_bary, ibug[17:], weights, ibug[:17], contour_w, names)


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


def rotation(aa: np.ndarray) -> np.ndarray:
    """Rodrigues for one axis-angle vector: the hot loop's version of flame.rodrigues, without batching overhead."""
    x, y, z = float(aa[0]), float(aa[1]), float(aa[2])
    theta = math.sqrt(x * x + y * y + z * z)
    if theta < 1e-12:
        return np.eye(3)
    x, y, z = x / theta, y / theta, z / theta
    s, c = math.sin(theta), math.cos(theta)
    t = 1.0 - c
    return np.array([
        [c + t * x * x, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, c + t * y * y, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, c + t * z * z],
    ])  # fmt: skip


def huber_weights(errors: np.ndarray, k: float) -> np.ndarray:
    """IRLS weights of the Huber loss for errors in units of sigma: 1 inside k, k / error beyond."""
    return np.where(errors <= k, 1.0, k / np.maximum(errors, 1e-12))


def rotation_to_axis_angle(r: np.ndarray) -> np.ndarray:
    angle = np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if np.pi - angle < 1e-4:  # near 180°: use the symmetric part
        axis = np.sqrt(np.maximum((np.diag(r) + 1.0) / 2.0, 0.0)) * np.sign(axis + 1e-12)
        return axis / np.linalg.norm(axis) * angle
    return axis / (2.0 * np.sin(angle)) * angle


def skew(w: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    z = np.zeros(w.shape[:-1])
    return np.stack([z, -w[..., 2], w[..., 1], w[..., 2], z, -w[..., 0], -w[..., 1], w[..., 0], z], -1).reshape(
        w.shape[:-1] + (3, 3)
    )


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


@dataclass(frozen=True)
class FitSolution:
    shape: np.ndarray
    photos: tuple[PhotoState, ...]
    residuals_px: tuple[np.ndarray, ...]  # per photo, per landmark used (static then contour)
    landmark_names: tuple[tuple[str, ...], ...]


class Problem:
    """The least-squares problem for one or several photos of one person."""

    def __init__(
        self,
        model: FlameModel,
        observations: list[Observation],
        options: FitOptions,
        photo_weights: np.ndarray | None = None,
        embedding: Embedding | None = None,
    ) -> None:
        self.model, self.obs, self.opt = model, observations, options
        self.fn = LandmarkFunction(model, options.n_shape, options.n_expr)
        self.ns, self.ne = self.fn.ns, self.fn.ne
        self.targets = [make_targets(model, o, options, embedding) for o in observations]
        self.photo_w = np.ones(len(observations)) if photo_weights is None else np.asarray(photo_weights, float)
        self.block = self.ne + 9  # ψ, rotation increment, jaw, camera
        self.static_ops = [self.fn.prepare(t.faces, t.bary) for t in self.targets]
        self.prior_jac = self.prior_jacobian(len(observations))
        self._ops: dict[tuple[int, int], SurfaceOperators] = {}

    def correspondences(self, p: int, state: PhotoState):
        """Operators, target pixels and weights of photo p's landmarks, the contour chosen by the head's yaw."""
        t = self.targets[p]
        row = int(contour_rows(np.stack([state.rotation, np.eye(3)])[None])[0])
        if (p, row) not in self._ops:
            contour = self.fn.prepare(self.model.dynamic_lmk_faces[row], self.model.dynamic_lmk_bary[row])
            self._ops[(p, row)] = SurfaceOperators(
                *(
                    np.concatenate([a, b])
                    for a, b in zip(astuple_shallow(self.static_ops[p]), astuple_shallow(contour), strict=True)
                )
            )
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
        sigma = self.opt.landmark_sigma
        errors = []
        for p, st in enumerate(states):
            ops, target, weight = self.correspondences(p, st)
            size = self.obs[p].face_size
            huber = 1.0 if robust is None else robust[p]
            scale = np.sqrt(weight * huber * self.photo_w[p]) / (size * sigma)  # per landmark
            if not jacobian:
                uv = self.project_photo(beta, st, ops)
                rows.append(((uv - target) * scale[:, None]).ravel())
                errors.append(np.linalg.norm(uv - target, axis=1) / (size * sigma))
                continue
            pts, root, dp_b, dp_e, dp_j, droot_b, droot_e = self.fn.points(
                ops, beta, st.expression, st.jaw, True, linear=not rigid
            )
            rel = pts - root
            world = rel @ st.rotation.T + root
            uv, d_point, d_cam = project(st.camera, world)
            rows.append(((uv - target) * scale[:, None]).ravel())
            errors.append(np.linalg.norm(uv - target, axis=1) / (size * sigma))
            r_minus = np.eye(3) - st.rotation
            jac = np.zeros((len(target), 2, n_cols))
            to_px = partial(np.matmul, d_point)  # d world (L,3,k) -> d pixels (L,2,k)
            if free_shape and not rigid:
                dw_b = st.rotation @ dp_b + (r_minus @ droot_b)[None]
                jac[:, :, : self.ns] = to_px(dw_b)
            base = self.ns + p * self.block
            if not rigid:
                dw_e = st.rotation @ dp_e + (r_minus @ droot_e)[None]
                jac[:, :, base : base + self.ne] = to_px(dw_e)
                jac[:, :, base + self.ne + 3 : base + self.ne + 6] = to_px(st.rotation @ dp_j)
            # d(R exp([δ]) rel)/dδ = -R [rel]×
            jac[:, :, base + self.ne : base + self.ne + 3] = to_px(-(st.rotation @ skew(rel)))
            jac[:, :, base + self.ne + 6 : base + self.ne + 9] = d_cam
            jac *= scale[:, None, None]
            jac_rows.append(jac.reshape(-1, n_cols))
        prior = self.prior_rows(beta, states)
        r = np.concatenate(rows + [prior])
        if not jacobian:
            return r, errors
        return r, np.concatenate(jac_rows + [self.prior_jac]), errors

    def prior_rows(self, beta, states) -> np.ndarray:
        o = self.opt
        rows = [np.sqrt(o.shape_prior) * beta]
        for st in states:
            rows += [np.sqrt(o.expr_prior) * st.expression, np.sqrt(o.jaw_prior) * st.jaw]
        return np.concatenate(rows)

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
            blocks += [e, j]
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
            cam = st.camera.params + d[self.ne + 6 :]
            if st.camera.is_perspective:
                cam[2] = max(cam[2], 0.1)
            else:
                cam[0] = max(cam[0], 1e-3)
            s.camera = st.camera.with_params(cam)
            new_states.append(s)
        return new_beta, new_states

    def solve(self, beta, states, iterations: int, free_shape: bool, rigid: bool, tolerance: float = 1e-5):
        """Levenberg–Marquardt; Huber weights are refreshed from each accepted step's residuals (IRLS)."""
        mu = 1e-3
        free = self._free_columns(len(states), free_shape, rigid)
        _, errors = self.residuals(beta, states, None, False, free_shape, rigid)
        for _ in range(iterations):
            robust = [huber_weights(e, self.opt.robust_k) for e in errors]
            r, jac, _ = self.residuals(beta, states, robust, True, free_shape, rigid)
            cost = r @ r
            jf = jac[:, free]
            jtj, jtr = jf.T @ jf, jf.T @ r
            new_cost = cost
            for _ in range(8):
                delta = np.zeros(jac.shape[1])
                delta[free] = -np.linalg.solve(jtj + mu * (np.diag(np.diag(jtj)) + np.eye(len(jtj))), jtr)
                nb, ns = self.apply(beta, states, delta, free_shape)
                r_new, new_errors = self.residuals(nb, ns, robust, False, free_shape, rigid)
                if r_new @ r_new < cost:
                    beta, states, errors, new_cost, mu = nb, ns, new_errors, r_new @ r_new, max(mu / 3, 1e-7)
                    break
                mu *= 4
            if cost - new_cost < tolerance * cost:
                break
        return beta, states

    def _free_columns(self, n_photos: int, free_shape: bool, rigid: bool) -> np.ndarray:
        free = np.zeros(self.ns + self.block * n_photos, bool)
        free[: self.ns] = free_shape and not rigid
        for p in range(n_photos):
            base = self.ns + p * self.block
            if not rigid:
                free[base : base + self.ne] = True
                free[base + self.ne + 3 : base + self.ne + 6] = True
            free[base + self.ne : base + self.ne + 3] = True
            free[base + self.ne + 6 : base + self.block] = True
        return free

    def landmark_residuals_px(self, beta, states) -> tuple[list[np.ndarray], list[tuple[str, ...]]]:
        res = []
        for p, st in enumerate(states):
            ops, target, _ = self.correspondences(p, st)
            res.append(np.linalg.norm(self.project_photo(beta, st, ops) - target, axis=1))
        return res, [t.names for t in self.targets]


def initial_state(problem: Problem, p: int) -> PhotoState:
    """Rigid start: scaled-orthographic pose of the mean face from the static correspondences (POS)."""
    model, obs, options, targets = problem.model, problem.obs[p], problem.opt, problem.targets[p]
    fn = problem.fn
    pts3, root = fn.points(problem.static_ops[p], np.zeros(fn.ns), np.zeros(fn.ne), np.zeros(3), jacobian=False)
    img = targets.points.astype(np.float64)
    # Least-squares affine camera [u, -v] = A @ X + b, then its nearest scaled rotation.
    design = np.hstack([pts3, np.ones((len(pts3), 1))])
    rhs = np.stack([img[:, 0], -img[:, 1]], axis=1)
    sol, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    a = sol[:3].T  # (2, 3)
    r1, r2 = a[0], a[1]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2.0
    r1, r2 = r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2)
    r3 = np.cross(r1, r2)
    u, _, vt = np.linalg.svd(np.stack([r1, r2, r3 / max(np.linalg.norm(r3), 1e-9)]))
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        rot = u @ np.diag([1, 1, -1]) @ vt
    # The rotation acts about the root joint: fold that into the translation.
    centre3 = pts3.mean(0)
    world_c = (centre3 - root) @ rot.T + root
    target_c = img.mean(0)
    tx, ty = target_c[0] - s * world_c[0], target_c[1] + s * world_c[1]
    ne = min(options.n_expr, model.n_expr)
    cam = Camera("orthographic", np.array([s, tx, ty]))
    if options.camera == "perspective":
        w, h = obs.image_size
        focal = options.focal_factor * max(w, h)
        dist = focal / s
        # pick (tx, ty) so that the face centre projects where the orthographic camera put it
        cx, cy = w / 2.0, h / 2.0
        ptx = (target_c[0] - cx) / focal * dist - world_c[0]
        pty = -(target_c[1] - cy) / focal * dist - world_c[1]
        cam = Camera("perspective", np.array([ptx, pty, dist + world_c[2]]), focal, (cx, cy))
    elif options.camera == "weak_perspective":
        cam = Camera("weak_perspective", cam.params)
    return PhotoState(np.zeros(ne), rot, np.zeros(3), cam)


def pupil_vertices(model: FlameModel) -> np.ndarray:
    """The front-most vertex of each eyeball (subject's right, then left), as MediaPipe orders iris centres."""
    out = []
    for joint in (4, 3):
        eyeball = np.flatnonzero(model.lbs_weights[:, joint] > 0.99)
        out.append(eyeball[np.argmax(model.v_template[eyeball, 2])] if eyeball.size else -1)
    return np.array(out)


def fit_gaze(problem: Problem, beta: np.ndarray, state: PhotoState, obs: Observation) -> np.ndarray:
    """Pitch and yaw (radians, shared by both eyes) that put the pupils on the detected iris centres."""
    model, fn = problem.model, problem.fn
    tips = pupil_vertices(model)
    if obs.iris is None or (tips < 0).any():
        return np.zeros(2)
    # A surface point exactly at each pupil vertex: any triangle using it, all weight on that corner.
    tri = np.array([np.flatnonzero((model.faces == t).any(axis=1))[0] for t in tips])
    bary = (model.faces[tri] == tips[:, None]).astype(np.float64)
    pupils, root = fn.points(fn.prepare(tri, bary), beta, state.expression, state.jaw, jacobian=False)
    eyes = fn.joints(beta, state.expression)[[4, 3]]  # neck at rest: the eye joints do not move
    rot = state.rotation  # the eyes' parent (neck) turns with the global rotation only
    centres = (eyes - root) @ rot.T + root
    offsets = (pupils - eyes) @ rot.T

    def residual(g: np.ndarray) -> np.ndarray:
        # The eye turns in its parent's frame: offset' = R R_eye Rᵀ offset.
        turn = rot @ rotation(np.array([g[0], g[1], 0.0])) @ rot.T
        return (state.camera.project(centres + offsets @ turn.T) - obs.iris).ravel() / obs.face_size

    g = np.zeros(2)
    for _ in range(8):
        r = residual(g)
        jac = np.stack([(residual(g + e) - r) / 1e-5 for e in np.eye(2) * 1e-5], axis=1)
        step = np.linalg.solve(jac.T @ jac + 1e-4 * np.eye(2), -jac.T @ r)
        g = np.clip(g + step, -GAZE_LIMIT, GAZE_LIMIT)
        if np.abs(step).max() < 1e-5:
            break
    return g


def fit_flame(
    model: FlameModel,
    observations: list[Observation],
    options: FitOptions = FitOptions(),
    photo_weights: np.ndarray | None = None,
    start: FitSolution | None = None,
    embedding: Embedding | None = None,
) -> FitSolution:
    """Fit shared β and per-photo ψ, pose and camera to the observations.

    `embedding` adds learned MediaPipe correspondences (see mp_embedding) to FLAME's 105."""
    problem = Problem(model, observations, options, photo_weights, embedding)
    if start is None:
        states = [initial_state(problem, p) for p in range(len(observations))]
        beta = np.zeros(problem.ns)
        beta, states = problem.solve(beta, states, options.rigid_iterations, free_shape=False, rigid=True)
    else:
        beta, states = start.shape[: problem.ns].copy(), [s.copy() for s in start.photos]
    beta, states = problem.solve(beta, states, options.iterations, free_shape=True, rigid=False)
    if options.fit_gaze:
        for st, o in zip(states, observations, strict=True):
            st.gaze = fit_gaze(problem, beta, st, o)
    residuals, names = problem.landmark_residuals_px(beta, states)
    return FitSolution(beta, tuple(states), tuple(residuals), tuple(names))
