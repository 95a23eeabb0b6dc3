"""Albedo and displacement textures from photos: projection, visibility, SH de-lighting, filling, fusion.

All colour work is in linear RGB. Per photo: each texel of FLAME's UV layout is placed on the fitted
mesh, projected with the fitted camera, kept where a depth buffer shows it and the surface faces the
camera (weighted by the view angle), and read from the photo. A 9×3 spherical-harmonics light is fitted
by least squares on skin texels (DECA / Deng et al.'s model: colour = albedo × SH(n)); albedo = colour ÷
shading. Photos are fused by visibility × view angle × photo confidence; texels no photo saw are filled
from their left–right mirror (FLAME's UV layout is symmetric about u = ½), then by a push–pull pyramid,
blended through feathered weights so no seam shows.

Displacement is, for now, a high-pass of the de-lit log-luminance ("cavity" reading: pores and wrinkles
read darker than the skin around them), 0.5 mm per unit of log contrast. bench/textures.py measures it
against a known displacement map and finds no correlation yet (issue D stays open on this point).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .flame_model import FlameModel
from .images import to_working
from .mp_embedding import vertex_normals
from .result import FitResult, PhotoFit
from .textures import TextureSet, srgb_to_linear
from .uv_raster import UVRaster, rasterize_uv

# DECA's SH normalisation constants (Ramamoorthi & Hanrahan irradiance), for basis terms
# 1, x, y, z, xy, xz, yz, x²−y², 3z²−1.
SH_CONSTANTS = np.array([
    1 / np.sqrt(4 * np.pi),
    2 * np.pi / 3 * np.sqrt(3 / (4 * np.pi)),
    2 * np.pi / 3 * np.sqrt(3 / (4 * np.pi)),
    2 * np.pi / 3 * np.sqrt(3 / (4 * np.pi)),
    np.pi / 4 * 3 * np.sqrt(5 / (12 * np.pi)),
    np.pi / 4 * 3 * np.sqrt(5 / (12 * np.pi)),
    np.pi / 4 * 3 * np.sqrt(5 / (12 * np.pi)),
    np.pi / 4 * 3 / 2 * np.sqrt(5 / (12 * np.pi)),
    np.pi / 4 * 1 / 2 * np.sqrt(5 / (4 * np.pi)),
])  # fmt: skip
DEPTH_TOLERANCE_M = 0.004  # a texel this far behind the front surface is hidden
MIN_FACING = 0.15  # cos(view angle) below which a texel is not used
DETAIL_SIGMA_MM = 2.0  # the high-pass keeps detail finer than this on the face
DETAIL_MM_PER_LOG = 0.5  # displacement depth per unit of log-luminance contrast (cavity calibration)


def sample_bilinear(image: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, C) of an (H, W, C) float image at pixel positions (N, 2), edges replicated."""
    import cv2

    n = len(px)
    cols = 1024  # cv2.remap wants maps under 32767 rows: lay the N points out as a grid
    padded = np.zeros((-(-n // cols) * cols, 2), np.float32)
    padded[:n] = px
    grid = padded.reshape(-1, cols, 2)
    out = cv2.remap(image, grid[..., 0], grid[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, image.shape[2])[:n]


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """(N, 9) SH irradiance basis of unit normals."""
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    terms = np.stack([np.ones_like(x), x, y, z, x * y, x * z, y * z, x**2 - y**2, 3 * z**2 - 1], axis=1)
    return terms * SH_CONSTANTS


@dataclass(frozen=True)
class PhotoTexture:
    colour: np.ndarray  # (H, W, 3) linear photo colour
    albedo: np.ndarray  # (H, W, 3) colour ÷ shading
    weight: np.ndarray  # (H, W) visibility × view angle, 0 where unseen
    sh: np.ndarray  # (9, 3)
    warnings: tuple[str, ...] = ()


@dataclass
class TextureBaker:
    """Texture extraction for one model at one resolution (the UV raster is computed once)."""

    model: FlameModel
    size: int = 1024
    raster: UVRaster = field(init=False)

    def __post_init__(self) -> None:
        self.raster = rasterize_uv(self.model, self.size)
        m = self.model
        # Eyeball texels are hidden in Blender (spheres replace them): never sample or fill from them.
        eyeball_tri = m.eyeball_triangles()
        self.usable = self.raster.covered & ~eyeball_tri[np.maximum(self.raster.triangle, 0)]
        self.face_tri = self._face_triangles()

    def _face_triangles(self) -> np.ndarray:
        from .metrics import face_region

        face = face_region(self.model)
        return face[self.model.faces].all(axis=1)

    def photo_texture(self, photo_rgb: np.ndarray, scale: float, fit: PhotoFit) -> PhotoTexture:
        """Project one photo (working-size sRGB uint8; `scale` original px per working px) into UV."""

        m, r = self.model, self.raster
        mask = self.usable
        tri = r.triangle[mask]
        bary = r.bary[mask]
        verts = fit.vertices
        normals_v = vertex_normals(verts, m.faces)
        points = np.einsum("nkc,nk->nc", verts[m.faces[tri]], bary)
        normals = np.einsum("nkc,nk->nc", normals_v[m.faces[tri]], bary)
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        px = to_working(fit.camera.project(points), scale)
        view = self._view_dirs(fit, points)
        facing = np.einsum("nc,nc->n", normals, view)
        depth = points @ np.array([0.0, 0.0, 1.0])
        visible = self._depth_test(fit, verts, scale, photo_rgb.shape[:2], px, depth) & (facing > MIN_FACING)
        visible &= ~self._masked_by_features(fit, scale, photo_rgb.shape[:2], px)
        linear = srgb_to_linear(photo_rgb / 255.0).astype(np.float32)
        sampled = sample_bilinear(linear, px)
        # Only the face region is taken from the photo: at the scalp, neck and ears the mesh outline
        # does not follow hair and clothes, and background would leak in. The rest is filled.
        visible &= self.face_tri[tri]
        weight = np.where(visible, np.clip((facing - MIN_FACING) / (1 - MIN_FACING), 0, 1) ** 1.5, 0.0)
        basis = sh_basis(normals)
        skin = visible & self._skin_colour(sampled, visible)
        sh, shading, warnings = self._fit_light(basis, sampled, skin, visible)
        albedo = np.clip(sampled / shading[:, None], 0.0, 1.0)
        return PhotoTexture(
            self._to_image(sampled), self._to_image(albedo), self._to_image(weight[:, None])[..., 0], sh, warnings
        )

    def _view_dirs(self, fit: PhotoFit, points: np.ndarray) -> np.ndarray:
        if not fit.camera.is_perspective:
            return np.broadcast_to([0.0, 0.0, 1.0], points.shape)
        tx, ty, tz = fit.camera.params
        eye = np.array([-tx, -ty, tz])
        d = eye - points
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def _depth_test(self, fit, verts, scale, shape, px, depth) -> np.ndarray:
        """Painter's-algorithm depth buffer of the posed mesh in the photo; texels behind it are hidden."""
        import cv2

        h, w = shape
        uv = to_working(fit.camera.project(verts), scale)
        faces = self.model.faces
        tri_uv = uv[faces]
        e1, e2 = tri_uv[:, 1] - tri_uv[:, 0], tri_uv[:, 2] - tri_uv[:, 0]
        front = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) < 0  # counter-clockwise in y-up = facing us
        tri_depth = verts[faces, 2].max(axis=1)
        buffer = np.full((h, w), -np.inf, np.float32)
        order = np.flatnonzero(front)[np.argsort(tri_depth[front])]  # far to near: near ones paint last
        fixed = np.round(tri_uv * 16).astype(np.int32)
        for f in order:
            cv2.fillConvexPoly(buffer, fixed[f], float(tri_depth[f]), lineType=cv2.LINE_8, shift=4)
        x = np.clip(np.round(px[:, 0]).astype(int), 0, w - 1)
        y = np.clip(np.round(px[:, 1]).astype(int), 0, h - 1)
        inside = (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
        return inside & (depth >= buffer[y, x] - DEPTH_TOLERANCE_M)

    def _masked_by_features(self, fit: PhotoFit, scale, shape, px) -> np.ndarray:
        """Texels that land in the eye openings or the open mouth (they would see eyeballs or teeth)."""
        import cv2

        names = {n: i for i, n in enumerate(fit.landmark_names)}
        ibug = {int(n.split(":")[1]): fit.landmarks_px[i] for n, i in names.items() if n.startswith("ibug:")}
        from .detect import MEDIAPIPE_TO_IBUG68

        mp = {int(n.split(":")[1]): fit.landmarks_px[i] for n, i in names.items() if n.startswith("mp:")}
        polygons = []
        for group in ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (60, 61, 62, 63, 64, 65, 66, 67)):
            pts = [ibug.get(i, mp.get(int(MEDIAPIPE_TO_IBUG68[i]))) for i in group]
            if all(p is not None for p in pts):
                polygons.append(np.round(to_working(np.array(pts), scale)).astype(np.int32))
        mask = np.zeros(shape, np.uint8)
        for poly in polygons:
            cv2.fillPoly(mask, [poly], 1)
        x = np.clip(np.round(px[:, 0]).astype(int), 0, shape[1] - 1)
        y = np.clip(np.round(px[:, 1]).astype(int), 0, shape[0] - 1)
        return mask[y, x] > 0

    @staticmethod
    def _skin_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """Texels whose chromaticity and brightness are close to the median skin's (no brows, lips, beard)."""
        total = colour.sum(axis=1) + 1e-6
        chroma = colour[:, :2] / total[:, None]
        ref_c = np.median(chroma[visible], axis=0) if visible.any() else np.array([0.45, 0.3])
        ref_l = np.median(total[visible]) if visible.any() else 1.0
        return (np.linalg.norm(chroma - ref_c, axis=1) < 0.04) & (total > 0.4 * ref_l) & (total < 2.5 * ref_l)

    @staticmethod
    def _fit_light(
        basis: np.ndarray, colour: np.ndarray, skin: np.ndarray, visible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple]:
        """SH light (9, 3) by least squares on skin texels with the albedo taken as constant there, then the
        shading luminance per texel, normalised to 1 on average skin (the albedo keeps the photo's colour)."""
        warnings = []
        if skin.sum() < 200:
            return np.zeros((9, 3)), np.ones(len(colour)), ("too little visible skin to estimate the light",)
        sh = np.zeros((9, 3))
        keep = skin.copy()
        for _ in range(2):  # refit without the worst-explained texels (specular spots, shadows of hair)
            sh, *_ = np.linalg.lstsq(basis[keep], colour[keep], rcond=None)
            err = np.abs(colour - basis @ sh).sum(axis=1)
            keep = skin & (err < np.percentile(err[skin], 90))
        lum = basis @ sh @ np.array([0.2126, 0.7152, 0.0722])
        shading = lum / np.median(lum[skin])
        low = (shading[visible] < 0.2).mean()
        if sh[0] @ np.ones(3) <= 0 or low > 0.05:
            warnings.append(f"implausible light estimate ({100 * low:.0f} % of texels nearly unlit): shading clamped")
        return sh, np.clip(shading, 0.2, 3.0), tuple(warnings)

    def _to_image(self, values: np.ndarray) -> np.ndarray:
        img = np.zeros((self.size, self.size, values.shape[1]), np.float32)
        img[self.usable] = values
        return img

    def bake(self, photos: list[tuple[np.ndarray, float, PhotoFit]]) -> tuple[TextureSet, list[np.ndarray]]:
        """Fuse the photos' de-lit albedos, fill what none saw, and derive the displacement map."""
        parts = [(self.photo_texture(rgb, s, fit), fit.confidence) for rgb, s, fit in photos]
        weights = [p.weight * max(c, 1e-3) for p, c in parts]
        total = sum(weights)
        albedo = (
            sum(w[..., None] * p.albedo for w, (p, _) in zip(weights, parts, strict=True))
            / np.maximum(total, 1e-8)[..., None]
        )
        filled = fill_unseen(albedo, total, self.raster.covered)
        notes = [w for p, _ in parts for w in p.warnings]
        displacement = detail_displacement(filled, total, self.size)
        return TextureSet(filled.astype(np.float32), displacement, tuple(notes)), [p.sh for p, _ in parts]


def push_pull(colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill zero-weight texels smoothly from the weighted pyramid (coarser levels reach further)."""
    if min(colour.shape[:2]) <= 1:
        w = weight.sum()
        mean = (colour * weight[..., None]).sum((0, 1)) / max(w, 1e-8)
        return np.broadcast_to(mean, colour.shape).copy()
    h, w = colour.shape[:2]
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    pad = ((0, 2 * h2 - h), (0, 2 * w2 - w))
    wc = np.pad(weight, pad)
    cc = np.pad(colour * weight[..., None], pad + ((0, 0),))
    w_small = wc.reshape(h2, 2, w2, 2).sum((1, 3))
    c_small = cc.reshape(h2, 2, w2, 2, -1).sum((1, 3)) / np.maximum(w_small, 1e-8)[..., None]
    coarse = push_pull(c_small, np.minimum(w_small, 1.0))
    up = _upsample(coarse, 2 * h2, 2 * w2)[:h, :w]
    alpha = np.clip(weight, 0, 1)[..., None]
    return alpha * colour + (1 - alpha) * up


def _upsample(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear ×2 (a nearest-neighbour one would leave blocks in the fill)."""
    import cv2

    out = cv2.resize(image.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(h, w, -1)


def fill_unseen(albedo: np.ndarray, weight: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Seen texels stay; unseen ones take their UV mirror where that was seen, then a smooth skin fill.

    Weights are feathered (blurred) before blending, so the borders between the three sources are soft."""
    import cv2

    mirrored, m_weight = albedo[:, ::-1], weight[:, ::-1]
    direct = np.clip(weight / 0.3, 0, 1)
    mirror = np.clip(m_weight / 0.3, 0, 1) * (1 - direct)
    colour = (direct[..., None] * albedo + mirror[..., None] * mirrored) / np.maximum(direct + mirror, 1e-8)[..., None]
    known = np.clip(direct + mirror, 0, 1) * covered
    smooth = push_pull(colour, known)
    feather = cv2.GaussianBlur(known.astype(np.float32), (0, 0), sigmaX=max(albedo.shape[0] / 256, 1.0))
    alpha = np.minimum(known, feather)[..., None]
    return np.clip(alpha * colour + (1 - alpha) * smooth, 0, 1)


def detail_displacement(albedo: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """Metres along the normal: −k · high-pass of the de-lit log-luminance on seen texels (cavity reading:
    darker is deeper), zero elsewhere, feathered. Not yet validated: see bench/textures.py."""
    import cv2

    lum = np.log(np.clip(albedo @ np.array([0.2126, 0.7152, 0.0722], np.float32), 1e-3, None))
    sigma = DETAIL_SIGMA_MM * 0.4 * size / 60.0  # the face spans ≈ 40 % of the UV width: ≈ 60 mm
    seen = np.clip(weight / 0.3, 0, 1).astype(np.float32)
    blur_w = cv2.GaussianBlur(seen, (0, 0), sigma)
    base = cv2.GaussianBlur((lum * seen).astype(np.float32), (0, 0), sigma) / np.maximum(blur_w, 1e-6)
    detail = np.clip(lum - base, -1.0, 1.0) * cv2.GaussianBlur(seen, (0, 0), 2.0)
    return (detail * DETAIL_MM_PER_LOG / 1000.0).astype(np.float32)


def bake_textures(
    model: FlameModel, result: FitResult, photos_rgb: list[tuple[np.ndarray, float]], size: int = 1024,
    baker: TextureBaker | None = None,
) -> tuple[TextureSet, list[np.ndarray]]:  # fmt: skip
    """Textures of `result` from its photos (working-size sRGB arrays with their scales), and the SH lights."""
    baker = baker if baker is not None and baker.size == size else TextureBaker(model, size)
    return baker.bake([(rgb, s, fit) for (rgb, s), fit in zip(photos_rgb, result.photos, strict=True)])
