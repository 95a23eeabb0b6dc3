"""Several photos of one person: refine the landmark fit until the photos agree on the colour of the skin.

Landmarks pin a head at a few hundred points; the skin between them is seen in every photo, and when the geometry
is right a surface point has the same colour in all photos that see it. After the landmark fit (person.py), β
(shared) and each photo's expression, pose and camera are refined to minimise that disagreement over 892
fixed surface points of the face (barycentric samples of FLAME's UV layout within 7 cm of the nose tip,
clear of the eye and mouth openings), under DECA's image model: colour = albedo × SH shading(normal) + a
per-photo offset.

The albedo of each point is not an unknown: for fixed shading, the value that agrees best with the photos seeing
the point is their weighted mean (variable projection), eliminated in closed form — so a point only one photo
sees adds nothing, and with one photo the refinement is a no-op. Per level (coarse to fine: the photos blurred by
a share of the face size): visibility from a depth buffer of the posed mesh, each photo's SH light and offset
fitted against the consensus albedo, the colour noise from the residuals' median; then Levenberg–Marquardt steps
on the landmark term, the priors and this term together (solver.solve), with Cauchy weights on the colour
residuals (hair, glasses, highlights and cast shadows are outliers). The landmark and prior terms stay, so the
shape cannot drift where the colours say nothing. Before the levels, each photo's agreement with the others is
judged (odd_photos_down): one that does not belong (another person, very different light) is named and
down-weighted in both terms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import CancelledError
from ..flame.forward import flame_forward, landmarks68, surface_points, vertex_normals
from ..flame.model import FlameModel
from ..flame.regions import NOSE_TIP_IBUG
from ..images import to_working
from ..options import REFINE_MODES, FitOptions
from ..texture.albedo import sh_basis
from ..texture.raster import rasterize_uv
from ..texture.visibility import depth_visible, view_dirs
from .gaze import fit_gaze
from .problem import FitSolution, PhotoState, Problem, SurfaceOperators
from .solver import solve

INNER_LIPS = np.arange(60, 68)  # iBUG-68
MIN_FACING = 0.25  # cos(view angle) below which a photo's colour of a point is not used (grazing, blurred)
CAUCHY_K = 2.5  # colour residuals (in units of the noise) beyond this count less and less
NOISE_FLOOR = 0.004  # linear RGB: the colour noise is never taken below this (clean renders)
# Agreement (a photo's best correlation of de-lit skin with another photo's, judged on the landmark fit): portraits
# of the same person 0.95-0.99, a third photo of another person 0.53 and 0.46 against 0.95; an exact render of the
# same head whose landmark fit was off by 2.5 px noise scored 0.76 against 0.88.
ODD_GAP = 0.25  # a photo this far below the best one's agreement is odd (three photos or more)
ODD_WEIGHT = 0.1  # and counts this much in both terms
LOW_AGREEMENT = 0.6  # two photos: below this they are reported as disagreeing

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class PhotoPixels:
    """A photo as the refinement reads it: linear RGB at working size, and original px per working px."""

    linear: np.ndarray  # (H, W, 3) float32
    scale: float


@dataclass(frozen=True)
class SkinSamples:
    """Fixed points on the face: triangle and barycentrics of each, from FLAME's UV layout on a coarse grid."""

    faces: np.ndarray  # (S,)
    bary: np.ndarray  # (S, 3)


def skin_samples(model: FlameModel, grid: int, radius_m: float, opening_m: float) -> SkinSamples:
    """The texel centres of a grid² raster of the UV layout within radius_m of the mean face's nose tip, and
    at least opening_m from the eyeballs and the inner lip line (the eye and mouth openings show eyeballs,
    lashes and teeth, which the FLAME surface does not model: there the colours would pull the lids and lips).
    A UV grid spreads the points over the skin roughly evenly, and the same points come back for every run."""
    raster = rasterize_uv(model, grid)
    lm = landmarks68(model, flame_forward(model))[0]
    near = np.linalg.norm(model.v_template - lm[NOSE_TIP_IBUG], axis=1) < radius_m
    face_tri = near[model.faces].all(axis=1) & ~model.eyeball_triangles()
    keep = raster.covered & face_tri[np.maximum(raster.triangle, 0)]
    faces, bary = raster.triangle[keep].astype(np.int64), raster.bary[keep].astype(np.float64)
    points = surface_points(model.v_template[None], model.faces, faces, bary)[0]
    eyeballs = model.v_template[model.lbs_weights[:, 3:5].sum(axis=1) > 0.5]
    openings = np.concatenate([eyeballs, lm[INNER_LIPS]])
    clear = np.ones(len(points), bool)
    for chunk in np.array_split(np.arange(len(points)), max(1, len(points) // 256)):  # bounded memory
        d = np.linalg.norm(points[chunk, None] - openings[None], axis=2).min(axis=1)
        clear[chunk] = d >= opening_m
    return SkinSamples(faces[clear], bary[clear])


@dataclass(frozen=True)
class PhotoLevel:
    """What stays fixed for one photo during one level's steps."""

    image: np.ndarray  # (H, W, 3) blurred linear photo
    grad_x: np.ndarray  # (H, W, 3) its derivatives along x and y, per working pixel
    grad_y: np.ndarray
    weight: np.ndarray  # (S,) seen × facing × photo weight; 0 where the photo does not see the point
    shading: np.ndarray  # (S, 3) SH irradiance (gain included)
    offset: np.ndarray  # (3,)
    scale: float


def blurred(linear: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo blurred by sigma_px and its central-difference derivatives along x and y."""
    import cv2

    img = cv2.GaussianBlur(linear, (0, 0), sigma_px) if sigma_px > 0.3 else linear
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE)
    return img, gx, gy


def bilinear(image: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Exact bilinear samples (N, C) of an (H, W, C) image at pixel positions (N, 2), edges replicated. (cv2.remap
    rounds positions to 1/32 px: steps smaller than that would not change the colours the solver compares.)"""
    h, w = image.shape[:2]
    x = np.clip(px[:, 0], 0, w - 1.001)
    y = np.clip(px[:, 1], 0, h - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def consensus(colours: list[np.ndarray], levels: list[PhotoLevel]) -> tuple[np.ndarray, np.ndarray]:
    """The albedo (S, 3) that agrees best with the photos seeing each point, argmin Σ_p w_p |c_p − o_p − a L_p|²,
    and each photo's share of it, A (P, S, 3), so that a = Σ_p A_p (c_p − o_p)."""
    w = np.stack([lv.weight for lv in levels])[..., None]  # (P, S, 1)
    shading = np.stack([lv.shading for lv in levels])  # (P, S, 3)
    share = w * shading / np.maximum((w * shading**2).sum(0), 1e-12)
    albedo = sum(share[p] * (colours[p] - levels[p].offset) for p in range(len(levels)))
    return albedo, share


def fit_light(colour: np.ndarray, albedo: np.ndarray, basis: np.ndarray, weight: np.ndarray):
    """Per channel, the SH light (9,) and offset that best explain colour = albedo × basis @ sh + offset on the
    points with weight > 0, refitted once without the worst-explained tenth. (S, 3) shading, (3,) offset."""
    shading, offset = np.ones_like(colour), np.zeros(3)
    use = weight > 0
    if use.sum() < 50:
        return shading, offset
    for c in range(3):
        design = np.hstack([basis * albedo[:, c : c + 1], np.ones((len(basis), 1))])
        keep = use.copy()
        for _ in range(2):
            sw = np.sqrt(weight[keep])[:, None]
            sol, *_ = np.linalg.lstsq(design[keep] * sw, colour[keep, c] * sw[:, 0], rcond=None)
            err = np.abs(design @ sol - colour[:, c])
            keep = use & (err <= np.percentile(err[use], 90))
        shading[:, c], offset[c] = basis @ sol[:9], sol[9]
    return np.maximum(shading, 1e-3), offset


class PhotoTerm:
    """The photo-consistency residuals and their Jacobian over [β | per-photo blocks] (an extra term for solve)."""

    def __init__(self, problem: Problem, samples: SkinSamples, photos: list[PhotoPixels], options: FitOptions):
        self.problem, self.photos, self.opt = problem, photos, options
        self.samples = samples
        self.ops: SurfaceOperators = problem.fn.prepare(samples.faces, samples.bary)
        self.levels: list[PhotoLevel] = []
        self.noise = 1.0
        self.row_scale = 0.0
        self.robust: list[np.ndarray] = []

    # --- a level: what stays fixed during its steps --------------------------------------------------------
    def start_level(self, beta, states: list[PhotoState], sigma_share: float, photo_weights: np.ndarray) -> None:
        """Visibility, blur, light and noise for the current geometry; blur = sigma_share × face size."""
        model, s = self.problem.model, self.samples
        levels, colours, bases = [], [], []
        for p, (st, photo) in enumerate(zip(states, self.photos, strict=True)):
            verts = flame_forward(model, beta, st.expression, st.pose()).vertices[0]
            points = surface_points(verts[None], model.faces, s.faces, s.bary)[0]
            normals = surface_points(vertex_normals(verts, model.faces)[None], model.faces, s.faces, s.bary)[0]
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
            px = to_working(st.camera.project(points), photo.scale)
            facing = (normals * view_dirs(st.camera, points)).sum(axis=1)
            shape = photo.linear.shape[:2]
            seen = depth_visible(st.camera, verts, model.faces, photo.scale, shape, px, points[:, 2])
            weight = np.where(seen, np.clip((facing - MIN_FACING) / (1 - MIN_FACING), 0, 1), 0.0) * photo_weights[p]
            face_px = self.problem.obs[p].face_size / photo.scale
            img, gx, gy = blurred(photo.linear, sigma_share * face_px)
            colours.append(bilinear(img, px))
            bases.append(sh_basis(normals))
            levels.append(PhotoLevel(img, gx, gy, weight, np.ones((len(px), 3)), np.zeros(3), photo.scale))
        # Light and consensus albedo in turn: a flat albedo first (the light takes the smooth shading), then
        # each photo's light against the albedo the photos agree on.
        albedo = np.ones((len(s.faces), 3))
        for _ in range(2):
            for p, lv in enumerate(levels):
                shading, offset = fit_light(colours[p], albedo, bases[p], lv.weight)
                levels[p] = PhotoLevel(lv.image, lv.grad_x, lv.grad_y, lv.weight, shading, offset, lv.scale)
            albedo, _ = consensus(colours, levels)
        self.levels = levels
        res, shared = self._residuals(colours)
        errors = np.concatenate([np.sqrt((r[shared & (lv.weight > 0)] ** 2).mean(1)) for r, lv in
                                 zip(res, levels, strict=True)])  # fmt: skip
        self.noise = max(1.4826 * float(np.median(errors)) if len(errors) else 1.0, NOISE_FLOOR)
        # Scale so that at the noise level this term weighs refine_weight × the landmark term's residual count,
        # whatever the number of points and photos.
        landmark_rows = sum(2 * len(self.problem.correspondences(p, st)[1]) for p, st in enumerate(states))
        photo_rows = max(3 * sum(int((shared & (lv.weight > 0)).sum()) for lv in levels), 1)
        self.row_scale = float(np.sqrt(self.opt.refine_weight * landmark_rows / photo_rows)) / self.noise

    def _colours(self, beta, states) -> list[np.ndarray]:
        out = []
        for st, lv in zip(states, self.levels, strict=True):
            px = to_working(self.problem.project_photo(beta, st, self.ops), lv.scale)
            out.append(bilinear(lv.image, px))
        return out

    def _residuals(self, colours: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """Each photo's colour residuals (S, 3) against the consensus, and which points two photos or more see."""
        albedo, _ = consensus(colours, self.levels)
        shared = sum((lv.weight > 0).astype(int) for lv in self.levels) >= 2
        return [c - lv.offset - albedo * lv.shading for c, lv in zip(colours, self.levels, strict=True)], shared

    def agreement(self, beta, states) -> list[float]:
        """Per photo, how well its de-lit skin (colour − offset, ÷ shading; luminance) agrees with the photo it
        agrees with best: the largest weighted correlation (−1..1) with another photo over the points both see.
        Pairwise, so one odd photo lowers no one's score but its own. 1.0 with a single photo."""
        colours = self._colours(beta, states)
        lum = np.array([0.2126, 0.7152, 0.0722])
        delit = [((c - lv.offset) / lv.shading) @ lum for c, lv in zip(colours, self.levels, strict=True)]
        n = len(self.levels)
        if n < 2:
            return [1.0]
        corr = np.full((n, n), -1.0)
        for p in range(n):
            for q in range(p + 1, n):
                w = self.levels[p].weight * self.levels[q].weight
                if w.sum() <= 0:
                    continue
                a = delit[p] - np.average(delit[p], weights=w)
                b = delit[q] - np.average(delit[q], weights=w)
                corr[p, q] = corr[q, p] = (w * a * b).sum() / np.sqrt((w * a * a).sum() * (w * b * b).sum() + 1e-24)
        return [float(c) for c in corr.max(axis=1)]

    # --- the term for solve() ------------------------------------------------------------------------------
    def residuals(self, beta, states, jacobian: bool):
        """Stacked weighted residuals (and their Jacobian). With the Jacobian, the Cauchy weights are refreshed
        (IRLS); trial steps reuse them."""
        colours = self._colours(beta, states)
        res, shared = self._residuals(colours)
        if jacobian:
            self.robust = []
            for r in res:
                e = np.sqrt((r**2).mean(1)) / self.noise
                self.robust.append(1.0 / (1.0 + (e / CAUCHY_K) ** 2))
        rows = [self._row_weights(p, shared)[:, None] * r for p, r in enumerate(res)]
        r_all = np.concatenate([r.ravel() for r in rows])
        if not jacobian:
            return r_all
        return r_all, self._jacobian(beta, states, shared)

    def _row_weights(self, p: int, shared: np.ndarray) -> np.ndarray:
        lv = self.levels[p]
        return np.where(shared, np.sqrt(lv.weight * self.robust[p]), 0.0) * self.row_scale

    def _jacobian(self, beta, states, shared: np.ndarray) -> np.ndarray:
        """d residual / d parameters: r_p = c_p − o_p − L_p Σ_q A_q (c_q − o_q), with the shading and the
        shares A held fixed, so dr_p = dc_p − L_p Σ_q A_q dc_q, and dc = ∇image · d pixel."""
        problem = self.problem
        d_colour = []
        for p, (st, lv) in enumerate(zip(states, self.levels, strict=True)):
            uv, jac = problem.point_jacobian(p, beta, st, self.ops, free_shape=True, rigid=False)
            px = to_working(uv, lv.scale)
            grad = np.stack([bilinear(lv.grad_x, px), bilinear(lv.grad_y, px)], axis=-1)  # (S, 3, 2)
            d_colour.append(np.einsum("scx,sxk->sck", grad / lv.scale, jac))  # working px per original px
        _, share = consensus([np.zeros((len(shared), 3))] * len(self.levels), self.levels)
        mean = sum(share[q][..., None] * d_colour[q] for q in range(len(self.levels)))
        blocks = []
        for p, lv in enumerate(self.levels):
            jp = (d_colour[p] - lv.shading[..., None] * mean) * self._row_weights(p, shared)[:, None, None]
            blocks.append(jp.reshape(-1, jp.shape[-1]))
        return np.concatenate(blocks)


@dataclass(frozen=True)
class Refinement:
    solution: FitSolution
    agreement: tuple[float, ...]  # per photo, −1..1 (see PhotoTerm.agreement), after refinement
    weights: tuple[float, ...]  # the photo weights the refinement used (confidence × agreement factor)
    warnings: tuple[str, ...]


def _quiet(fraction: float, message: str) -> None:
    pass


def refines(options: FitOptions, n_photos: int) -> bool:
    """Whether a fit of n photos is refined: "auto" and "on" with two photos or more (one photo has nothing to
    agree with: the term is empty), never with "off"."""
    if options.refine not in REFINE_MODES:
        raise ValueError(f"unknown refine mode {options.refine!r}; choose one of {', '.join(REFINE_MODES)}")
    return options.refine != "off" and n_photos >= 2


def odd_photos_down(term: PhotoTerm, beta, states, weights: np.ndarray, names: list[str], warnings: list[str]):
    """Photo weights with the photos that disagree with the others down-weighted (× ODD_WEIGHT), each named in
    `warnings`. Judged at the finest blur on the landmark fit: with three photos or more, a photo whose agreement
    is ODD_GAP below the best one's is odd; with two there is no majority, so a low agreement is only reported."""
    term.start_level(beta, states, term.opt.refine_levels[-1], weights)
    agree = np.asarray(term.agreement(beta, states))
    out = weights.copy()
    if len(agree) == 2:
        if agree.max() < LOW_AGREEMENT:
            warnings.append(f"{names[0]} and {names[1]} agree poorly on the skin's colours ({agree[0]:.2f}): "
                            "two different people, or very different light?")  # fmt: skip
        return out
    for p in np.flatnonzero(agree < agree.max() - ODD_GAP):
        warnings.append(f"{names[p]}: its skin agrees poorly with the other photos' ({agree[p]:.2f} vs up to "
                        f"{agree.max():.2f}); down-weighted (another person, or very different light?)")  # fmt: skip
        out[p] *= ODD_WEIGHT
    return out


def refine_person(
    problem: Problem, start: FitSolution, photos: list[PhotoPixels], names: list[str], options: FitOptions,
    progress: Progress = _quiet, cancel: threading.Event | None = None,
) -> Refinement:  # fmt: skip
    """Refine a several-photo landmark fit by photo-consistency (module docstring). `problem` is the landmark
    problem of the same photos (its photo weights are the confidences); `names` label the warnings."""
    term = PhotoTerm(
        problem,
        skin_samples(problem.model, options.refine_grid, options.refine_radius, options.refine_opening),
        photos,
        options,
    )
    beta, states = start.shape.copy(), [s.copy() for s in start.photos]
    weights = problem.photo_w.copy()
    warnings: list[str] = []
    levels = options.refine_levels
    if len(photos) >= 2:
        weights = odd_photos_down(term, beta, states, weights, names, warnings)
        problem.photo_w = weights
    for i, sigma_share in enumerate(levels):
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
        progress(i / len(levels), f"photo-consistency, level {i + 1} of {len(levels)}")
        term.start_level(beta, states, sigma_share, weights)
        beta, states = solve(problem, beta, states, options.refine_iterations, free_shape=True, rigid=False,
                             extra=term)  # fmt: skip
    agreement = tuple(term.agreement(beta, states))
    residuals, landmark_names = problem.landmark_residuals_px(beta, states)
    if options.fit_gaze:
        for st, obs in zip(states, problem.obs, strict=True):
            st.gaze = fit_gaze(problem, beta, st, obs)
    solution = FitSolution(beta, tuple(states), tuple(residuals), tuple(landmark_names))
    return Refinement(solution, agreement, tuple(float(w) for w in weights), tuple(warnings))
