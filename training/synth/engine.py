"""One synthetic image with exact labels: a random FLAME head (identity, expression, pose, gaze, eyelids) seen
by a random orthographic or perspective camera, textured with a UV albedo baked from a CC BY portrait, lit
(directional + ambient + specular), eyes shaded from their own triangles, teeth, gums and tongue seen through open
lips (mouth.py), procedural hair cap, hair mass, shoulders, strands, hands and glasses, composited onto a
background photo, then blurred / noised / JPEG'd.

Image `index` of seed `seed` depends only on (seed, index): its generator is default_rng([seed, index])."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...inference.flame import flame_forward
from ...inference.flame.model import FlameModel
from . import glasses
from .mouth import GUMS_SRGB, TEETH_SRGB, load_mouth_mesh, posed_mouth
from .raster import Raster, rasterize

SKIN_SRGB = np.array([0.80, 0.62, 0.52], np.float32)
HAIR_SRGB = np.array(
    [[0.05, 0.04, 0.03], [0.15, 0.09, 0.05], [0.30, 0.18, 0.09], [0.55, 0.40, 0.22], [0.80, 0.68, 0.45],
     [0.45, 0.18, 0.07], [0.55, 0.55, 0.55], [0.85, 0.85, 0.85]], np.float32,
)  # fmt: skip
MOUTH_INSIDE_SRGB = np.array([0.25, 0.08, 0.07], np.float32)  # back faces seen through the lips: the mouth's inside
IRIS_SRGB = np.array([[0.25, 0.14, 0.07], [0.12, 0.07, 0.04], [0.30, 0.42, 0.55], [0.32, 0.40, 0.25]], np.float32)
CAMERA_KINDS = ("orthographic", "perspective")
SEGMENTS = ("background", "skin", "eye", "hair", "mouth_interior", "occluder")


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


SRGB_U8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)


def euler_to_axis_angle(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Radians; R = Ry(yaw) · Rx(pitch) · Rz(roll) in FLAME's frame, as an axis-angle vector."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    aa, _ = cv2.Rodrigues(ry @ rx @ rz)
    return aa.ravel()


def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.stack([np.bincount(faces.ravel(), np.repeat(fn[:, k], 3), minlength=len(v)) for k in range(3)], 1)
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class Assets:
    """What every image draws from: albedo textures (N, S, S, 3) uint8 sRGB, fitted expressions (M, E),
    background photos (uint8 RGB), optional photo cut-outs (uint8 RGB) and their provenance."""

    albedos: np.ndarray | None = None
    expressions: np.ndarray | None = None
    backgrounds: tuple[np.ndarray, ...] = ()
    cutouts: tuple[np.ndarray, ...] = ()
    people: dict | None = None  # rgba (N, S, S, 4), eyes (N, 2, 2) px, hair (N, 3): see bank.build_people


def eyeball_geometry(model: FlameModel) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per template vertex: its eye joint (3 or 4; -1 off the eyeballs) and the cos of its angle from that eye's
    pupil axis (+z at rest) at the eye's centre (-1 off the eyeballs); and each eye's vertex indices."""
    weights = model.lbs_weights
    eye_vertex = np.where(weights[:, 3:5].sum(1) > 0.5, np.argmax(weights[:, 3:5], 1) + 3, -1)
    t = np.asarray(model.v_template, np.float32)
    eye_cos = np.full(len(t), -1.0, np.float32)
    centres = []
    for j in (3, 4):
        idx = np.nonzero(eye_vertex == j)[0]
        if len(idx):
            d = t[idx] - t[idx].mean(0)
            eye_cos[idx] = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
            centres.append(idx)
    return eye_vertex, eye_cos, centres


def eye_colours(cos: np.ndarray, iris: np.ndarray, sclera: float, r_iris: float, r_pupil: float) -> np.ndarray:
    """(N, 3) linear albedo of eyeball points from their cos to the pupil axis: pupil, iris (3,), sclera."""
    return np.where(cos[:, None] > r_pupil, 0.01, np.where(cos[:, None] > r_iris, iris, sclera)).astype(np.float32)


class Engine:
    def __init__(self, model: FlameModel, assets: Assets, size: int = 256) -> None:
        self.model, self.assets, self.size = model, assets, size
        self.faces = np.asarray(model.faces, np.int64)
        self.has_uv = model.uv_coords is not None and model.uv_faces is not None
        if self.has_uv:
            self.uv_corners = np.asarray(model.uv_coords, np.float32)[model.uv_faces]  # (F, 3, 2)
        eye_tri = model.eyeball_triangles()
        self.eye_tri = eye_tri
        t = np.asarray(model.v_template, np.float32)
        self.template = t
        self.eye_vertex, self.eye_cos, self.eye_centres = eyeball_geometry(model)
        # Scalp coordinates for the hair cap: height above the eyes and depth, normalised by the head's extent.
        eyes_y = t[self.eye_vertex > 0, 1].mean() if (self.eye_vertex > 0).any() else 0.02
        top = t[:, 1].max()
        self.scalp_h = (t[:, 1] - eyes_y) / max(top - eyes_y, 1e-6)  # 0 at the eyes, 1 at the crown
        zmin, zmax = t[:, 2].min(), t[:, 2].max()
        self.scalp_z = (t[:, 2] - zmin) / max(zmax - zmin, 1e-6)  # 0 at the back, 1 at the nose tip
        self.head_part = t[:, 1] > t[:, 1].min() + 0.45 * (top - t[:, 1].min())  # for the head's centre
        self.neck_bottom = np.nonzero(t[:, 1] < t[:, 1].min() + 0.01)[0]
        self.mouth = load_mouth_mesh(model)  # teeth, gums and tongue (None without the shipped asset)

    # --- parameters -------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> dict:
        m = self.model
        heavy = rng.random() < 0.2
        shape = rng.standard_t(4, m.n_shape) if heavy else rng.normal(size=m.n_shape)
        shape = np.clip(shape, -5, 5)
        bank = self.assets.expressions
        if bank is not None and len(bank) and rng.random() < 0.5:
            fitted = int(rng.integers(len(bank)))
            psi = bank[fitted] * rng.uniform(0.6, 1.4) + rng.normal(0, 0.2, bank.shape[1])
        else:
            fitted = -1
            psi = rng.normal(size=m.n_expr) * rng.uniform(0.3, 1.2)
        expr = np.zeros(m.n_expr)
        expr[: min(len(psi), m.n_expr)] = psi[: m.n_expr]
        yaw = rng.uniform(-90, 90) if rng.random() < 0.5 else np.clip(rng.normal(0, 25), -90, 90)
        pitch = rng.uniform(-90, 90) if rng.random() < 0.15 else np.clip(rng.normal(0, 15), -90, 90)
        roll = rng.uniform(-90, 90) if rng.random() < 0.15 else np.clip(rng.normal(0, 10), -90, 90)
        pose = np.zeros((5, 3))
        pose[0] = euler_to_axis_angle(*np.radians([yaw, pitch, roll]))
        pose[1] = rng.normal(0, np.radians(4), 3)
        pose[2, 0] = rng.uniform(0, 0.35) if rng.random() < 0.4 else abs(rng.normal(0, 0.05))
        gaze = rng.normal(0, 0.2, 2)
        pose[3, :2] = pose[4, :2] = gaze
        eyelids = np.zeros(2)
        if m.eyelid_left is not None and rng.random() < 0.2:
            eyelids[:] = rng.uniform(0, 1)
            eyelids += rng.normal(0, 0.1, 2)
            eyelids = np.clip(eyelids, 0, 1)
        return {
            "shape": shape, "expression": expr, "pose": pose, "eyelids": eyelids,
            "euler_deg": np.array([yaw, pitch, roll]), "fitted_expression": fitted,
        }  # fmt: skip

    def camera(self, rng: np.random.Generator, head_centre: np.ndarray) -> tuple[int, np.ndarray]:
        """Kind (0 orthographic, 1 perspective) and (p0, p1, p2, focal, cx, cy) as Camera's params."""
        n = self.size
        s = n * rng.uniform(0.4, 0.85) / 0.22  # px per metre: a 22 cm head spans 40-85 % of the image
        jx, jy = rng.normal(0, 0.06 * n, 2)
        if rng.random() < 0.5:
            return 0, np.array([s, n / 2 + jx - s * head_centre[0], n / 2 + jy + s * head_centre[1], 0, 0, 0])
        dist = np.exp(rng.uniform(np.log(0.25), np.log(2.0)))  # metres from the head's centre
        f = s * dist
        tx = -head_centre[0] + jx / s
        ty = -head_centre[1] - jy / s
        return 1, np.array([tx, ty, head_centre[2] + dist, f, n / 2, n / 2])

    @staticmethod
    def project(kind: int, cam: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels (V, 2) and nearness (V,) (larger is nearer: z for both cameras)."""
        if kind == 0:
            s, tx, ty = cam[:3]
            return np.stack([s * v[:, 0] + tx, -s * v[:, 1] + ty], 1), v[:, 2]
        tx, ty, tz, f, cx, cy = cam
        zc = np.maximum(tz - v[:, 2], 1e-3)
        return np.stack([cx + f * (v[:, 0] + tx) / zc, cy - f * (v[:, 1] + ty) / zc], 1), v[:, 2]

    # --- one image -------------------------------------------------------------------------------------
    def make(self, seed: int, index: int) -> tuple[np.ndarray, np.ndarray, dict]:
        """(image (S, S, 3) uint8 RGB, segment (S, S) uint8 (SEGMENTS), labels)."""
        rng = np.random.default_rng([seed, index])
        n = self.size
        p = self.sample(rng)
        out = flame_forward(self.model, p["shape"], p["expression"], p["pose"], p["eyelids"][None])
        v = out.vertices[0]
        centre = v[self.head_part].mean(0)
        kind, cam = self.camera(rng, centre)
        xy, near = self.project(kind, cam, v)
        ras = rasterize(xy, near, self.faces, n, n)
        normals = vertex_normals(v, self.faces)
        if kind == 0:
            view = np.broadcast_to(np.array([0, 0, 1], np.float32), v.shape)
        else:
            eye = np.array([-cam[0], -cam[1], cam[2]])
            view = eye - v
            view = view / np.linalg.norm(view, axis=1, keepdims=True)
        facing = (normals * view).sum(1)

        pix, tri, bary = ras.pixels, ras.pixel_triangle, ras.pixel_bary
        corners = self.faces[tri]

        def interp(values: np.ndarray) -> np.ndarray:
            w = bary[:, :, None] if values.ndim > 1 else bary
            return sum(values[corners[:, k]] * w[:, k] for k in range(3))

        # Albedo (linear RGB per covered pixel).
        albedos = self.assets.albedos
        if albedos is not None and len(albedos) and self.has_uv:
            ai = int(rng.integers(len(albedos)))
            tex = albedos[ai]
            uv = sum(self.uv_corners[tri, k] * bary[:, k, None] for k in range(3))
            mx = (uv[:, 0] * tex.shape[1] - 0.5).astype(np.float32)
            my = ((1 - uv[:, 1]) * tex.shape[0] - 0.5).astype(np.float32)
            side = int(np.ceil(np.sqrt(max(len(pix), 1))))
            pad = side * side - len(pix)
            mx = np.r_[mx, np.zeros(pad, np.float32)].reshape(side, side)
            my = np.r_[my, np.zeros(pad, np.float32)].reshape(side, side)
            col = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            albedo = SRGB_U8_TO_LINEAR[col.reshape(-1, 3)[: len(pix)]]
        else:
            ai = -1
            skin = srgb_to_linear(np.clip(SKIN_SRGB * rng.uniform(0.5, 1.15) + rng.normal(0, 0.03, 3), 0, 1))
            albedo = np.broadcast_to(skin, (len(pix), 3)).astype(np.float32)
        albedo = albedo * np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)  # skin tone jitter

        # Hair cap on the scalp: the hairline height and how far down the back it goes vary per image.
        hair_col = HAIR_SRGB[rng.integers(len(HAIR_SRGB))] * rng.uniform(0.8, 1.2)
        bald = rng.random() < 0.15
        # A real person's hair, neck and shoulders (CC BY portrait cut-out) around near-frontal heads.
        people = self.assets.people
        yaw, pitch, _ = p["euler_deg"]
        person = -1
        if people is not None and len(self.eye_centres) == 2 and abs(yaw) < 20 and abs(pitch) < 20:
            if rng.random() < 0.6:
                person = int(rng.integers(len(people["rgba"])))
                hair_col, bald = people["hair"][person] * rng.uniform(0.85, 1.1), False
        hair_lin = srgb_to_linear(np.clip(hair_col, 0, 1))
        hairline = rng.uniform(0.45, 0.75)
        back = rng.uniform(0.0, 0.9)
        line = hairline - back * (1 - self.scalp_z) * 1.2  # lower towards the back of the head
        hair_w = np.clip((self.scalp_h - line) / 0.08, 0, 1) * (0.0 if bald else 1.0)
        hair_w[self.eye_vertex > 0] = 0
        hair_w = hair_w.astype(np.float32)
        hp = interp(hair_w)[:, None]
        streak = 1 + 0.12 * np.sin(interp(self.template[:, 0]) * rng.uniform(300, 900) + rng.uniform(0, 6))
        albedo = albedo * (1 - hp) + hair_lin * streak[:, None] * hp

        # Eyes: sclera, iris and pupil by the angle from the pupil axis of each eyeball.
        eye_pix = self.eye_tri[tri]
        if eye_pix.any():
            iris = srgb_to_linear(np.clip(IRIS_SRGB[rng.integers(len(IRIS_SRGB))] * rng.uniform(0.7, 1.3), 0, 1))
            cos = interp(self.eye_cos)[eye_pix]
            r_iris, r_pupil = rng.uniform(0.83, 0.88), rng.uniform(0.955, 0.98)
            albedo[eye_pix] = eye_colours(cos, iris, rng.uniform(0.3, 0.55), r_iris, r_pupil)

        # Light: ambient + a directional light from the camera's side of the head + Blinn-Phong specular.
        n_px = interp(normals)
        n_px /= np.maximum(np.linalg.norm(n_px, axis=1, keepdims=True), 1e-9)
        vd = interp(np.ascontiguousarray(view))
        vd /= np.maximum(np.linalg.norm(vd, axis=1, keepdims=True), 1e-9)
        backface = (n_px * vd).sum(1) < -0.05  # inside of the mouth or neck seen through an opening
        light = rng.normal(0, 1, 3) + np.array([0, 0.6, 1.4])
        light /= np.linalg.norm(light)
        tint = np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)
        amb = rng.uniform(0.15, 0.6)
        key = rng.uniform(0.5, 1.1)
        lam = np.clip(n_px @ light, 0, None)
        if rng.random() < 0.5:  # a coloured fill light from anywhere
            fill = rng.normal(0, 1, 3)
            fill /= np.linalg.norm(fill)
            fill_col = rng.uniform(0.0, 0.5) * np.exp(rng.normal(0, 0.3, 3))
            lam = lam[:, None] + np.clip(n_px @ fill, 0, None)[:, None] * (fill_col / key)
        else:
            lam = lam[:, None]
        half = light + vd
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        spec = rng.uniform(0, 0.25) * np.clip((n_px * half).sum(1), 0, 1) ** rng.uniform(8, 40)
        spec *= 1 - hp[:, 0]
        colour = albedo * (amb + key * lam) * tint + spec[:, None] * tint
        colour[backface] = srgb_to_linear(MOUTH_INSIDE_SRGB) * amb
        if self.mouth is not None and backface.any():
            shown, part_albedo, part_normal = self.mouth_parts(rng, p["shape"], out.transforms[0], kind, cam, ras)
            seen = backface & shown[pix]  # a part nearer than the inside it is seen against
            lam_part = np.clip(part_normal[pix[seen]] @ light, 0, None)[:, None]
            shade = rng.uniform(0.3, 0.8)  # the lips and cheeks shadow the inside of the mouth
            colour[seen] = part_albedo[pix[seen]] * (amb + key * lam_part) * shade * tint
        fg = np.zeros((n * n, 3), np.float32)
        fg[pix] = linear_to_srgb(colour * rng.uniform(0.8, 1.3))
        fg = fg.reshape(n, n, 3)

        seg = np.zeros(n * n, np.uint8)
        seg[pix] = np.where(backface, 4, np.where(eye_pix, 2, np.where(hp[:, 0] > 0.5, 3, 1)))
        seg = seg.reshape(n, n)
        covered = (seg > 0).astype(np.float32)

        # Background, hair mass and shoulders behind the head; then the head with soft edges.
        img = self.background(rng)
        if person >= 0:
            self.paste_person(img, person, v, xy, kind, cam, n)
        else:
            if not bald and (hair_w > 0.5).any() and rng.random() < 0.6:
                self.hair_mass(img, rng, xy[hair_w > 0.5], hair_col, n)
            if rng.random() < 0.7 and len(self.neck_bottom):
                self.shoulders(img, rng, xy, n)
        alpha = cv2.GaussianBlur(covered, (3, 3), 0.6)[..., None] * 0.5 + covered[..., None] * 0.5
        img = img * (1 - alpha) + fg * alpha

        # Visibility: in frame, facing the camera and not behind the z-buffer at the vertex's pixel.
        ij = np.round(xy).astype(np.int64)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < n) & (ij[:, 1] >= 0) & (ij[:, 1] < n)
        ijc = np.clip(ij, 0, n - 1)
        zbuf = ras.depth[ijc[:, 1], ijc[:, 0]]
        tol = 0.004  # metres
        visible = inside & (facing > 0.0) & np.isfinite(zbuf) & (near >= zbuf - tol)

        # Occluders over the face (labelled in the segment map and per vertex).
        occ = np.zeros((n, n), np.float32)
        if not bald and rng.random() < 0.3:
            self.strands(img, occ, rng, xy[(hair_w > 0.5) & visible], hair_col, n)
        if rng.random() < glasses.SHARE and len(self.eye_centres) == 2:
            eyes = np.stack([v[idx].mean(0) for idx in self.eye_centres])
            glasses.draw_glasses(img, occ, rng, eyes, out.transforms[0, 1, :3, :3],
                                 lambda points: self.project(kind, cam, points), ras.depth, seg == 1)  # fmt: skip
        if rng.random() < 0.15:
            self.hand(img, occ, rng, xy[visible] if visible.any() else xy, n)
        if self.assets.cutouts and rng.random() < 0.2:
            self.cutout(img, occ, rng, xy[visible] if visible.any() else xy, n)
        occluded = visible & (occ[ijc[:, 1], ijc[:, 0]] > 0.5)
        seg[occ > 0.5] = 5

        img = self.augment(np.clip(img, 0, 1), rng)
        labels = {
            "vertices_px": xy.astype(np.float32),
            "visible": visible,
            "occluded": occluded,
            "shape": p["shape"].astype(np.float32),
            "expression": p["expression"].astype(np.float32),
            "pose": p["pose"].astype(np.float32),
            "eyelids": p["eyelids"].astype(np.float32),
            "euler_deg": p["euler_deg"].astype(np.float32),
            "camera_kind": np.int8(kind),
            "camera": cam.astype(np.float32),
            "albedo_index": np.int16(ai),
            "fitted_expression": np.int16(p["fitted_expression"]),
            "person_index": np.int16(person),
        }
        return img, seg, labels

    # --- pieces ----------------------------------------------------------------------------------------
    def mouth_parts(
        self,
        rng: np.random.Generator,
        shape: np.ndarray,
        transforms: np.ndarray,
        kind: int,
        cam: np.ndarray,
        ras: Raster,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Teeth, gums and tongue posed with the head and jaw: per image pixel (flat, S·S) whether a part is nearer
        than the head's surface there, its linear albedo (S·S, 3) and unit normal (S·S, 3)."""
        mesh, n = self.mouth, self.size
        v = posed_mouth(mesh, self.model, shape, transforms)
        xy, near = self.project(kind, cam, v)
        parts = rasterize(xy, near, mesh.triangles, n, n)
        shown = (parts.depth > ras.depth).ravel()
        teeth = srgb_to_linear(np.clip(TEETH_SRGB * rng.uniform(0.8, 1.08) + rng.normal(0, 0.02, 3), 0, 1))
        gums = srgb_to_linear(np.clip(GUMS_SRGB * rng.uniform(0.7, 1.1) + rng.normal(0, 0.03, 3), 0, 1))
        corners = mesh.triangles[parts.pixel_triangle]
        w = parts.pixel_bary
        tooth = sum(mesh.tooth[corners[:, k]] * w[:, k] for k in range(3)) > 0.5
        normals = vertex_normals(v, mesh.triangles)
        normal = sum(normals[corners[:, k]] * w[:, k, None] for k in range(3))
        albedo = np.zeros((n * n, 3), np.float32)
        unit = np.zeros((n * n, 3), np.float32)
        albedo[parts.pixels] = np.where(tooth[:, None], teeth, gums)
        unit[parts.pixels] = normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        return shown, albedo, unit

    def background(self, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        bgs = self.assets.backgrounds
        if not bgs or rng.random() < 0.08:
            c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
            t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
            img = (c0 * (1 - t) + c1 * t).astype(np.float32) * np.ones((1, n, 1), np.float32)
            return np.clip(img + rng.normal(0, 0.02, (n, n, 3)).astype(np.float32), 0, 1)
        src = bgs[int(rng.integers(len(bgs)))]
        h, w = src.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 1.0))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = src[y0 : y0 + side, x0 : x0 + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        img = cv2.resize(np.ascontiguousarray(crop), (n, n), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return np.clip(img * np.exp(rng.normal(0, 0.1, 3)).astype(np.float32) * rng.uniform(0.6, 1.2), 0, 1)

    def paste_person(
        self, img: np.ndarray, person: int, v: np.ndarray, xy: np.ndarray, kind: int, cam: np.ndarray, n: int
    ) -> None:
        """Warp the person's cut-out by the similarity that takes their eye centres onto the rendered ones (the
        scale from the 3-D eye distance, so that yaw does not shrink it) and composite it behind the head."""
        people = self.assets.people
        rgba = people["rgba"][person]
        src = people["eyes"][person].astype(np.float64) * (n / rgba.shape[0])
        dst = np.stack([xy[idx].mean(0) for idx in self.eye_centres])
        eyes3 = np.stack([v[idx].mean(0) for idx in self.eye_centres])
        depth = 0.0 if kind == 0 else cam[2] - eyes3[:, 2].mean()
        px_per_m = cam[0] if kind == 0 else cam[3] / max(depth, 1e-3)
        d_src, d_dst = src[1] - src[0], dst[1] - dst[0]
        scale = np.linalg.norm(eyes3[1] - eyes3[0]) * px_per_m / max(np.linalg.norm(d_src), 1e-6)
        ang = np.arctan2(d_dst[1], d_dst[0]) - np.arctan2(d_src[1], d_src[0])
        rot = scale * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        shift = dst.mean(0) - rot @ src.mean(0)
        m = np.c_[rot, shift]
        src_img = cv2.resize(rgba, (n, n), interpolation=cv2.INTER_AREA) if rgba.shape[0] != n else rgba
        warped = cv2.warpAffine(src_img, m, (n, n), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
        a = warped[..., 3:].astype(np.float32) / 255
        img[:] = img * (1 - a) + warped[..., :3].astype(np.float32) / 255 * a

    @staticmethod
    def hair_mass(img: np.ndarray, rng: np.random.Generator, pts: np.ndarray, hair_col: np.ndarray, n: int) -> None:
        """Long hair behind the head: the projected scalp's hull grown and pulled down."""
        if len(pts) < 3:
            return
        hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
        centre = hull.mean(0)
        grown = centre + (hull - centre) * rng.uniform(1.05, 1.25)
        length = rng.uniform(0, 0.6) * n
        low = grown[:, 1] > centre[1]
        grown[low, 1] += length
        poly = np.round(grown * 4).astype(np.int32)
        col = np.clip(hair_col * rng.uniform(0.7, 1.0), 0, 1).tolist()
        cv2.fillPoly(img, [poly], col, lineType=cv2.LINE_AA, shift=2)

    def shoulders(self, img: np.ndarray, rng: np.random.Generator, xy: np.ndarray, n: int) -> None:
        base = xy[self.neck_bottom]
        c = base.mean(0)
        neck_w = max(np.ptp(base[:, 0]), np.ptp(base[:, 1]), 4.0)
        axes = (int(neck_w * rng.uniform(2.0, 3.2)), int(neck_w * rng.uniform(1.0, 2.0)))
        centre = (int(c[0]), int(c[1] + axes[1] * 0.8))
        col = rng.uniform(0, 1, 3).tolist()
        cv2.ellipse(img, centre, axes, float(rng.normal(0, 10)), 0, 360, col, -1, cv2.LINE_AA)

    @staticmethod
    def strands(
        img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, roots: np.ndarray, hair_col: np.ndarray, n: int
    ) -> None:
        """Hair strands falling from the visible hairline over the face."""
        if len(roots) == 0:
            return
        for _ in range(int(rng.integers(5, 40))):
            r = roots[int(rng.integers(len(roots)))]
            pts = [r]
            d = np.array([rng.normal(0, 0.5), 1.0])
            for _ in range(int(rng.integers(3, 7))):
                d = d + rng.normal(0, 0.3, 2)
                pts.append(pts[-1] + d / np.linalg.norm(d) * rng.uniform(3, 10) * n / 256)
            poly = np.round(np.array(pts) * 4).astype(np.int32)
            thick = int(rng.integers(1, 3))
            col = np.clip(hair_col * rng.uniform(0.7, 1.3), 0, 1).tolist()
            cv2.polylines(img, [poly], False, col, thick, cv2.LINE_AA, shift=2)
            cv2.polylines(occ, [poly], False, 1.0, thick, cv2.LINE_8, shift=2)

    @staticmethod
    def hand(img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, targets: np.ndarray, n: int) -> None:
        """A flat-shaded hand (palm and five fingers as thick round-capped lines) over part of the face."""
        t = targets[int(rng.integers(len(targets)))]
        span = np.ptp(targets, 0).max() if len(targets) > 1 else n / 3
        s = max(span, n / 6) * rng.uniform(0.35, 0.6)
        ang = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        palm = t + (rot @ np.array([0, 0.9 * s]))  # palm below the touching fingertips
        skin = np.clip(SKIN_SRGB * rng.uniform(0.35, 1.15) + rng.normal(0, 0.04, 3), 0, 1)
        layer = np.zeros((n, n), np.float32)
        shade = np.zeros((n, n), np.float32)
        axes = (max(int(s * 0.45), 1), max(int(s * 0.55), 1))
        cv2.ellipse(layer, tuple(int(x) for x in palm), axes, float(np.degrees(ang)), 0, 360, 1.0, -1, cv2.LINE_AA)
        for k in range(5):
            off = (k - 2) * 0.22 * s
            length = s * (0.55 if k == 0 else rng.uniform(0.75, 1.0))
            base = palm + rot @ np.array([off, (0.1 if k == 0 else -0.3) * s])
            bend = rng.normal(0, 0.15)
            dirn = rot @ np.array([np.sin(bend) + (-0.6 if k == 0 else 0.0), -np.cos(bend)])
            tip = base + dirn * length
            w = max(int(s * rng.uniform(0.16, 0.2)), 1)
            cv2.line(layer, tuple(int(x) for x in base), tuple(int(x) for x in tip), 1.0, w, cv2.LINE_AA)
            cv2.line(shade, tuple(int(x) for x in base), tuple(int(x) for x in tip), 1.0, max(w // 3, 1), cv2.LINE_AA)
        gy = np.linspace(1.1, 0.8, n, dtype=np.float32)[:, None]
        col = skin[None, None] * (gy[..., None] * (1 - 0.15 * cv2.GaussianBlur(shade, (0, 0), 2)[..., None]))
        a = layer[..., None]
        img[:] = img * (1 - a) + col * a
        occ[:] = np.maximum(occ, layer)

    def cutout(self, img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, targets: np.ndarray, n: int) -> None:
        """A patch of a photo (non-commercial source, only with the flag) under a soft random ellipse."""
        src = self.assets.cutouts[int(rng.integers(len(self.assets.cutouts)))]
        h, w = src.shape[:2]
        side = int(min(h, w) * rng.uniform(0.2, 0.5))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        size = max(int(n * rng.uniform(0.15, 0.35)), 4)
        patch = cv2.resize(src[y0 : y0 + side, x0 : x0 + side], (size, size)).astype(np.float32) / 255
        mask = np.zeros((size, size), np.float32)
        cv2.ellipse(mask, (size // 2, size // 2), (size // 2 - 1, int(size * rng.uniform(0.2, 0.48))),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)  # fmt: skip
        t = targets[int(rng.integers(len(targets)))].astype(int) - size // 2
        x0, y0 = int(np.clip(t[0], 0, n - size)), int(np.clip(t[1], 0, n - size))
        region = img[y0 : y0 + size, x0 : x0 + size]
        region[:] = region * (1 - mask[..., None]) + patch * mask[..., None]
        occ[y0 : y0 + size, x0 : x0 + size] = np.maximum(occ[y0 : y0 + size, x0 : x0 + size], mask)

    @staticmethod
    def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = np.clip((img - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.normal(0, 0.04), 0, 1)
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.8))
        if rng.random() < 0.5:
            img = img + rng.normal(0, rng.uniform(0.005, 0.04), img.shape).astype(np.float32)
        out = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        if rng.random() < 0.6:
            ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 96))])
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        return out
