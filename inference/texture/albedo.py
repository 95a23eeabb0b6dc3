"""Albedo and displacement textures from photos: projection, visibility, SH de-lighting, filling, fusion.

All colour work is in linear RGB. Per photo: each texel of FLAME's UV layout is placed on the fitted
mesh, projected with the fitted camera, kept where a depth buffer shows it and the surface faces the
camera (weighted by the view angle), and read from the photo. A 9×3 spherical-harmonics light is fitted
on skin texels under a natural-light prior (texture/light.py; DECA / Deng et al.'s model: colour = albedo ×
SH(n)); albedo = colour ÷ shading ÷ gain, the gain being the camera's white balance and exposure (texture/colour.py). Photos are fused by visibility × view angle × photo confidence; texels no photo saw are filled
from their left–right mirror (FLAME's UV layout is symmetric about u = ½), then by a push–pull pyramid,
blended through feathered weights so no seam shows.

Displacement comes from the shading the smooth model cannot explain (texture/displacement.py): each photo's
de-lit luminance residual is read as the light's directional derivative of a height field, integrated
over all photos together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..flame.forward import surface_points, vertex_normals
from ..flame.model import FlameModel
from ..flame.regions import face_region
from ..images import to_working
from ..options import DEFAULTS
from ..result import PhotoFit
from . import colour as colour_model
from . import displacement, occlusion
from . import light as light_model
from .maps import TextureSet, srgb_to_linear
from .raster import UVRaster, rasterize_uv, uv_to_texel
from .visibility import depth_visible, view_dirs

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
MIN_FACING = 0.15  # cos(view angle) below which a texel is not used
REFIT_SHARE = 0.02  # the light is fitted again when this share of the skin it used was masked
EDGE_TAPER_1024 = 24.0  # texels at 1024² (≈ 8 mm on the cheek) over which photo weights fade at the face edge
FILL_CLEAR_1024 = 12.0  # texels at 1024² around an occluder mask that the skin fill does not draw from
MIN_SKIN_TEXELS = 200  # fewer visible skin texels than this: no light estimate, no skin cue
TOWARDS_CAMERA = (0.0, 0.0, 1.0)  # the fit's frame: the camera looks down -z (camera.py)
# The median skin texel's irradiance over a camera-facing surface's: 0.81 on 34 of the neutral studio portraits
# (p10-p90 0.75-0.86; mostly the face's own geometry, its normals spread about the view), measured with the SH light
# the bake fits. Without it the albedos came out 1.23 x brighter than the photo shows and bench/skin_ita.py's
# terciles rendered 6-16° ITA lighter than the photos' cheeks.
MEDIAN_SKIN_FACING = 0.81
MONOCHROME_NOTE = "black-and-white photo: the skin's colour is the skin model's for its lightness (not measured)"
SKIN_CHROMA_TOLERANCE = (0.04, 0.08)  # rg-chromaticity distance from the median: the studio's, the widest
MAX_LIGHT_CHROMA = 1.5  # bound on a channel's shading relative to the luminance shading (light_chroma)
SCENE_MARGIN = 0.25  # of the face size: the head's outline grown by this for hair and ears (the scene cue)


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
    slopes: np.ndarray  # (H, W, 2) relative shading change per unit height slope (displacement.shading_slopes)
    skin: np.ndarray  # (H, W) bool, seen texels of skin colour
    pixels: np.ndarray  # (H, W, 2) where each sampled texel lands in the working image (x, y)
    warnings: tuple[str, ...] = ()
    occluded: np.ndarray | None = None  # (H, W) bool, seen texels showing no skin (hair, glasses, hands, shadows)
    occluded_fraction: float = 0.0  # their share of the seen face texels
    hair: np.ndarray | None = None  # (3,) linear colour of a fringe over the brows (occlusion.hair_colour)
    # The camera's white balance and exposure with the light's colour and strength (texture/colour.py): the
    # albedo is the photo's colour ÷ shading ÷ gain. Ones without colour constancy.
    gain: np.ndarray = field(default_factory=lambda: np.ones(3))
    cues: tuple[str, ...] = ()  # which cues the gain came from (sclera, skin, scene)
    skin_colour: np.ndarray | None = None  # (3,) median de-lit skin colour before the gain (what the skin cue saw)


@dataclass(frozen=True)
class ColourContext:
    sclera: np.ndarray  # (N, 3) linear eye-white pixels
    scene: colour_model.Scene  # the scene around the head: the light's colour and the exposure


@dataclass(frozen=True)
class Delit:
    """One photo's de-lighting: SH light, albedo per sampled texel, and the gain divided out."""

    sh: np.ndarray
    albedo: np.ndarray
    warnings: tuple[str, ...]
    gain: np.ndarray
    cues: tuple[str, ...]
    skin_colour: np.ndarray | None
    context: ColourContext | None


def light_chroma(basis: np.ndarray, sh: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(N, 3) how the light's colour varies over the face relative to its average on skin (a coloured side
    light): each channel's SH shading over the luminance shading, both normalised on skin. Bounded, since the
    per-channel fits also see the skin's own colour variation (redder cheeks) where it follows the normals."""
    channel = basis @ sh
    lum = channel @ displacement.LUMINANCE
    if not skin.any():
        return np.ones_like(channel)
    ref_c, ref_l = np.median(channel[skin], axis=0), np.median(lum[skin])
    if not (np.all(ref_c > 1e-6) and ref_l > 1e-6):
        return np.ones_like(channel)
    ratio = (channel / ref_c) / np.maximum(lum / ref_l, 1e-6)[:, None]
    return np.clip(np.nan_to_num(ratio, nan=1.0), 1 / MAX_LIGHT_CHROMA, MAX_LIGHT_CHROMA)


def fit_skin_light(
    basis: np.ndarray, colour: np.ndarray, skin: np.ndarray, visible: np.ndarray,
    prior: light_model.LightPrior | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:  # fmt: skip
    """SH light (9, 3) on skin texels with the albedo taken as constant there, under the natural-light prior
    (texture/light.py), then the shading luminance per texel relative to a surface facing the camera.

    That surface is what the camera meters (texture/colour.py reads the exposure from the scene around the head,
    mostly surfaces facing it), so the albedo's level does not depend on where the light comes from. Relative to
    the median skin instead, a side light left half the face in shadow, the median dropped and every albedo came
    out ~1.4 x too bright (bench/textures.py, 45° side light: 15.9 dB against 19.1). Scaled by MEDIAN_SKIN_FACING,
    so that under the studio's light the level is where the median-skin reference put it (the preview's light
    and the colour prior are calibrated there)."""
    warnings = []
    if skin.sum() < MIN_SKIN_TEXELS:
        return np.zeros((9, 3)), np.ones(len(colour)), ("too little visible skin to estimate the light",)
    sh = np.zeros((9, 3))
    keep = skin.copy()
    for _ in range(2):  # refit without the worst-explained texels (specular spots, shadows of hair)
        sh = light_model.fit_sh(basis[keep], colour[keep], prior)
        err = np.abs(colour - basis @ sh).sum(axis=1)
        keep = skin & (err < np.percentile(err[skin], 90))
    lum = basis @ sh @ displacement.LUMINANCE
    reference = MEDIAN_SKIN_FACING * float((sh_basis(np.array([TOWARDS_CAMERA])) @ sh @ displacement.LUMINANCE)[0])
    if not np.isfinite(reference) or reference <= 1e-6:  # no light towards the camera (black, from behind): no ratio
        return np.zeros((9, 3)), np.ones(len(colour)), ("no usable light estimate (the skin is unlit): not de-lit",)
    shading = lum / reference
    low = (shading[visible] < 0.2).mean()
    if sh[0] @ np.ones(3) <= 0 or low > 0.05:
        warnings.append(f"implausible light estimate ({100 * low:.0f} % of texels nearly unlit): shading clamped")
    return sh, np.clip(shading, 0.2, 3.0), tuple(warnings)


@dataclass
class TextureBaker:
    """Texture extraction for one model at one resolution (the UV raster is computed once)."""

    model: FlameModel
    size: int = DEFAULTS.texture_size
    occluders: bool = True  # mask hair, glasses, hands and cast shadows out of the albedo (texture/occlusion.py)
    # What marks them: the skin colour model and/or the segmentation network (when its file is there).
    colour_occluders: bool = True
    learned_occluders: bool = True
    # Estimate the camera's white balance and exposure (texture/colour.py) and divide them out of the albedo.
    colour_constancy: bool = True
    # Read relief only from the shading that does not change the skin's colour (displacement.achromatic_residual).
    relief_chroma: bool = True
    raster: UVRaster = field(init=False)
    _net: occlusion.OccluderNet | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.raster = rasterize_uv(self.model, self.size)
        m = self.model
        # Eyeball texels are hidden in Blender (spheres replace them): never sample or fill from them.
        eyeball_tri = m.eyeball_triangles()
        self.usable = self.raster.covered & ~eyeball_tri[np.maximum(self.raster.triangle, 0)]
        self.face_tri = self._face_triangles()
        # Only the face region is taken from photos: at the scalp, neck and ears the mesh outline does
        # not follow hair and clothes, and background would leak in. The rest is filled.
        self.sampled = self.usable & self.face_tri[np.maximum(self.raster.triangle, 0)]
        self.taper = self._edge_taper()
        self.texel_corners = uv_to_texel(self.model.uv_coords, self.size)[self.model.uv_faces]
        # Metres per texel along u and v on the mean head (the UV metric hardly changes with identity).
        jacobian = displacement.uv_jacobian(m.v_template, m.faces, self.texel_corners)
        lengths = np.linalg.norm(jacobian, axis=1).astype(np.float32)  # (F, 2)
        self.texel_metres = np.where(self.raster.covered[..., None], lengths[np.maximum(self.raster.triangle, 0)], 0)
        self.zones = occlusion.face_zones(m, self.size)
        if self.occluders and self.learned_occluders:
            self._net = occlusion.load_occluder_net()
        self.colour_prior = colour_model.ColourPrior.load() if self.colour_constancy else None
        self.light_prior = light_model.LightPrior.load()

    def _edge_taper(self) -> np.ndarray:
        """Per sampled texel, 0 → 1 over EDGE_TAPER_1024 texels from the sampled region's edge: photo weights fade
        out there, so the mirrored and filled texture beyond it blends in without a visible border."""
        import cv2

        inside = np.pad(self.sampled, 1).astype(np.uint8)  # the image border counts as outside
        distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)[1:-1, 1:-1]
        ramp = np.clip(distance / (EDGE_TAPER_1024 * self.size / 1024), 0, 1)
        return (ramp * ramp * (3 - 2 * ramp))[self.sampled]

    def _face_triangles(self) -> np.ndarray:
        face = face_region(self.model)
        return face[self.model.faces].all(axis=1)

    def photo_texture(self, photo_rgb: np.ndarray, scale: float, fit: PhotoFit) -> PhotoTexture:
        """Project one photo (working-size sRGB uint8; `scale` original px per working px) into UV."""

        m, r = self.model, self.raster
        mask = self.sampled
        tri = r.triangle[mask]
        bary = r.bary[mask]
        verts = fit.vertices
        normals_v = vertex_normals(verts, m.faces)
        points = surface_points(verts[None], m.faces, tri, bary)[0]
        normals = surface_points(normals_v[None], m.faces, tri, bary)[0]
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        px = to_working(fit.camera.project(points), scale)
        view = view_dirs(fit.camera, points)
        facing = (normals * view).sum(axis=1)
        depth = points @ np.array([0.0, 0.0, 1.0])
        seen = depth_visible(fit.camera, verts, m.faces, scale, photo_rgb.shape[:2], px, depth)
        visible = seen & (facing > MIN_FACING)
        visible &= ~self._masked_by_features(fit, scale, photo_rgb, px)
        linear = srgb_to_linear(photo_rgb / 255.0).astype(np.float32)
        sampled = sample_bilinear(linear, px)
        weight = np.where(visible, np.clip((facing - MIN_FACING) / (1 - MIN_FACING), 0, 1) ** 1.5, 0.0) * self.taper
        basis = sh_basis(normals)
        skin = visible & self._skin_colour(sampled, visible)
        # In the fading band at the face edge, only skin-coloured texels count: hair over the cheeks and
        # temples, with nothing else near, would otherwise tint the fill beyond it (dark smudges).
        weight = np.where(skin | (self.taper >= 1), weight, 0.0)
        # Only what the gain needs: without colour constancy the eye whites and the scene are not looked at.
        context = self.colour_context(linear, fit, scale) if self.colour_prior is not None else None
        light = self._delight(basis, sampled, skin, visible, context)
        sh, albedo, warnings = light.sh, light.albedo, light.warnings
        occluded_image, hair = np.zeros((self.size, self.size), bool), None
        if self.occluders and self.zones is not None:
            seen = self._to_image(visible[:, None].astype(np.float32))[..., 0] > 0
            skin_image = self._to_image(skin[:, None].astype(np.float32))[..., 0] > 0
            learned = self._learned(photo_rgb, scale, fit, px, visible)
            # Within the seen texels, so all within the sampled ones: the same texels as an image and as a list.
            occluded_image = occlusion.occluder_mask(
                self._to_image(albedo), seen, self.zones, skin_image, learned, self.colour_occluders
            )
        occluded = occluded_image[mask]
        if occluded.any():  # zero weight: they count as unseen
            weight = weight * occlusion.keep_factor(occluded_image)[mask]
            if (skin & occluded).sum() > REFIT_SHARE * skin.sum():  # they pulled the light fit: again without them
                skin &= ~occluded
                light = self._delight(basis, sampled, skin, visible, light.context)
                sh, albedo, warnings = light.sh, light.albedo, light.warnings
            # Measured on the final albedo: the colour a hidden brow is painted in.
            hair = occlusion.hair_colour(self._to_image(albedo), occluded_image, self.zones)
        fraction = float(occluded.sum() / max(visible.sum(), 1))
        luminance_sh = sh @ displacement.LUMINANCE
        pullback = displacement.uv_pullback(verts, m.faces, self.texel_corners)[tri[visible]]
        slopes = np.zeros((len(tri), 2))
        slopes[visible] = displacement.shading_slopes(
            pullback,
            basis[visible] @ luminance_sh,
            displacement.sh_gradient(normals[visible], luminance_sh, SH_CONSTANTS),
        )
        image = self._to_image
        return PhotoTexture(
            image(sampled), image(albedo), image(weight[:, None])[..., 0], sh, image(slopes),
            image(skin[:, None].astype(np.float32))[..., 0] > 0, image(px), warnings,
            occluded_image, fraction, hair, light.gain, light.cues, light.skin_colour,
        )  # fmt: skip

    def colour_context(self, linear: np.ndarray, fit: PhotoFit, scale: float) -> ColourContext:
        """What the photo shows besides the skin that tells the gain: its eye whites and the scene around the head."""
        import cv2

        points = to_working(ibug68(fit), scale)
        sclera = colour_model.sclera_pixels(linear, [points[36:42], points[42:48]])
        # The head's outline (scalp and neck included), grown by a quarter of the face for hair and ears.
        hull = cv2.convexHull(np.round(to_working(fit.camera.project(fit.vertices), scale)).astype(np.int32))
        head = np.zeros(linear.shape[:2], np.uint8)
        cv2.fillConvexPoly(head, hull, 1)
        r = max(1, round(SCENE_MARGIN * fit.face_size_px / scale))
        head = cv2.dilate(head, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0
        return ColourContext(sclera, colour_model.scene_colour(linear, head))

    def _delight(
        self, basis: np.ndarray, colour: np.ndarray, skin: np.ndarray, visible: np.ndarray,
        context: ColourContext | None,
    ) -> Delit:  # fmt: skip
        """The light over the face (SH), then the photo's gain; albedo = colour ÷ shading ÷ gain."""
        sh, shading, warnings = fit_skin_light(basis, colour, skin, visible, self.light_prior)
        delit = colour / (shading[:, None] * light_chroma(basis, sh, skin))
        skin_colour = np.median(delit[skin], axis=0) if skin.sum() >= MIN_SKIN_TEXELS else None
        gain, cues = np.ones(3), ()
        if self.colour_prior is not None and context is not None and colour_model.is_monochrome(colour[visible]):
            # No colour to read: the exposure as for any photo, and each texel's lightness in the colour that the
            # skin model gives skin of the face's lightness (lips and brows take it too: a tinted black and white).
            prior = self.colour_prior
            gain, cues = np.full(3, np.exp(colour_model.exposure(prior, context.scene))), ("monochrome",)
            grey = (delit / gain) @ colour_model.LUMINANCE
            level = max(float(np.median(grey[skin if skin_colour is not None else visible])), 1e-4)
            tint = prior.skin_at(level) / level
            warnings = (*warnings, MONOCHROME_NOTE)
            return Delit(sh, np.clip(grey[:, None] * tint, 0.0, 1.0), warnings, gain, cues, skin_colour, context)
        if self.colour_prior is not None and context is not None:
            prior = self.colour_prior
            found = colour_model.photo_cues(prior, skin_colour, context.sclera, context.scene)
            log_gain = colour_model.photo_gain(found, prior, colour_model.exposure(prior, context.scene))
            gain, cues = np.exp(log_gain), tuple(c.name for c in found)
        albedo = np.clip(delit / gain, 0.0, 1.0)
        return Delit(sh, albedo, warnings, gain, cues, skin_colour, context)

    def _learned(
        self, photo_rgb: np.ndarray, scale: float, fit: PhotoFit, px: np.ndarray, visible: np.ndarray
    ) -> np.ndarray | None:  # fmt: skip
        """(H, W) UV image of the segmentation network's P(not skin) at each visible texel's pixel; None without
        the network."""
        if self._net is None:
            return None
        from ..landmarks.dense import crop_matrix

        prob, box = self._net.not_skin(photo_rgb, to_working(ibug68(fit), scale))
        a = crop_matrix(box, self._net.size)
        at = px @ a[:, :2].T + a[:, 2]
        inside = ((at >= 0) & (at <= self._net.size - 1)).all(axis=1)
        value = np.where(inside & visible, sample_bilinear(prob[..., None], at)[:, 0], 0.0)
        return self._to_image(value[:, None].astype(np.float32))[..., 0]

    def _masked_by_features(self, fit: PhotoFit, scale, photo_rgb: np.ndarray, px) -> np.ndarray:
        """Texels that land in the eye openings or the open mouth (they would see eyeballs or teeth)."""
        import cv2

        shape = photo_rgb.shape[:2]
        polygons = []
        for group in ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), INNER_LIPS):
            pts = observed_ibug(fit, group)
            if pts is not None:
                polygons.append(pts)
        if len(fit.model_landmarks68_px):
            # Also the fitted mesh's own inner lip line: the dense landmarks' iBUG rows are FLAME vertices nearest
            # the 68 points on the closed template, where the lower inner lip's 65 and 67 share the upper lip's
            # vertices, so their opening polygon is a sliver and teeth would be baked onto the inner lips.
            polygons.append(fit.model_landmarks68_px[list(INNER_LIPS)])
        polygons = [np.round(to_working(np.asarray(p), scale)).astype(np.int32) for p in polygons]
        mask = np.zeros(shape, np.uint8)
        for poly in polygons:
            cv2.fillPoly(mask, [poly], 1)
        outer = observed_ibug(fit, OUTER_LIPS)
        if outer is not None:
            mask |= mouth_interior(photo_rgb, to_working(outer, scale))
        x = np.clip(np.round(px[:, 0]).astype(int), 0, shape[1] - 1)
        y = np.clip(np.round(px[:, 1]).astype(int), 0, shape[0] - 1)
        return mask[y, x] > 0

    @staticmethod
    def _skin_colour(colour: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """Texels whose chromaticity and brightness are close to the median skin's (no brows, lips, beard).

        The chromaticity tolerance widens with the face's own spread (a blurred, compressed or unevenly lit photo
        spreads the skin's chromaticity too: at the studio's tolerance a UTKFace crop kept a fifth of its skin, in
        specks, and the light fitted to them was poor)."""
        total = colour.sum(axis=1) + 1e-6
        chroma = colour[:, :2] / total[:, None]
        ref_c = np.median(chroma[visible], axis=0) if visible.any() else np.array([0.45, 0.3])
        ref_l = np.median(total[visible]) if visible.any() else 1.0
        distance = np.linalg.norm(chroma - ref_c, axis=1)
        spread = np.median(distance[visible]) if visible.any() else 0.0
        tolerance = np.clip(spread, SKIN_CHROMA_TOLERANCE[0], SKIN_CHROMA_TOLERANCE[1])
        return (distance < tolerance) & (total > 0.4 * ref_l) & (total < 2.5 * ref_l)

    def _to_image(self, values: np.ndarray) -> np.ndarray:
        img = np.zeros((self.size, self.size, values.shape[1]), np.float32)
        img[self.sampled] = values
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
        skin = sum(w * p.skin * self._clear_of(p.occluded) for w, (p, _) in zip(weights, parts, strict=True))
        filled = fill_unseen(albedo, total, self.raster.covered, skin)
        if self.zones is not None:
            filled = occlusion.paint_hidden_brows(filled, total, self.zones, [p.hair for p, _ in parts])
            filled = occlusion.lift_eye_rings(filled, self.zones, total)
        notes = [w for p, _ in parts for w in p.warnings]
        height = self.relief(parts)
        textures = TextureSet(
            filled.astype(np.float32), height, tuple(notes), self.texel_metres,
            tuple(p.occluded_fraction for p, _ in parts),
            tuple(p.pixels[p.occluded] if p.occluded is not None else np.zeros((0, 2)) for p, _ in parts),
            photo_gains=tuple(p.gain for p, _ in parts),
        )  # fmt: skip
        return textures, [p.sh for p, _ in parts]

    def _clear_of(self, occluded: np.ndarray | None) -> np.ndarray:
        """(H, W) bool: texels farther than FILL_CLEAR_1024 from a photo's occluder mask. The mask's margin leaves
        mixed pixels (a blond fringe's tips over dark skin) that pass the loose skin-colour test and, right at the
        hole's border, would set the fill's colour."""
        import cv2

        if occluded is None or not occluded.any():
            return np.ones((self.size, self.size), bool)
        r = max(1, round(FILL_CLEAR_1024 * self.size / 1024))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)
        return cv2.dilate(occluded.astype(np.uint8), disc) == 0

    def relief(self, parts: list[tuple[PhotoTexture, float]]) -> np.ndarray:
        """Displacement in metres from all photos' shading residuals on skin, feathered to zero at the edge.

        Only skin texels away from the skin's edges take part (residual and equations alike): next to
        brows, lashes, lips and the masked eyes the smooth model's misfit and dark hairs would read as
        relief."""
        import cv2

        sigma = displacement.RESIDUAL_SIGMA_1024 * self.size / 1024
        margin = max(1, round(displacement.EDGE_MARGIN_1024 * self.size / 1024))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
        skins = [cv2.erode(p.skin.astype(np.uint8), kernel) > 0 for p, _ in parts]
        residual = displacement.achromatic_residual if self.relief_chroma else displacement.log_residual
        residuals = [residual(p.albedo, skin, sigma) for (p, _), skin in zip(parts, skins, strict=True)]
        weights = [
            p.weight * max(c, 1e-3) * skin * (np.abs(r) < displacement.RESIDUAL_LIMIT)
            for (p, c), skin, r in zip(parts, skins, residuals, strict=True)
        ]
        height = displacement.integrate_relief(residuals, [p.slopes for p, _ in parts], weights)
        used = (sum(weights) > 0).astype(np.float32)
        return (height * np.minimum(used, cv2.GaussianBlur(used, (0, 0), self.size / 512))).astype(np.float32)


INNER_LIPS = (60, 61, 62, 63, 64, 65, 66, 67)
OUTER_LIPS = tuple(range(48, 60))
# Inside the outer lip line, pixels this much less red (Lab a*, 8-bit units) than the reddest quarter are not lips:
# teeth and the mouth's inside. Measured on the portraits: a smile's teeth 20–40 below, the lips within 10 (closed
# mouths, light and dark skin, masked < 3 % of the lips, in specks at the corners).
NOT_LIP_A = 12.0


def mouth_interior(photo_rgb: np.ndarray, outer_lips: np.ndarray) -> np.ndarray:
    """(H, W) uint8 1 where the photo shows teeth or the inside of the mouth: within the outer lip polygon (working
    px), colours clearly less red than the lips (a smiling photo's teeth; the iBUG inner lip line cuts through them
    wherever the fit's lips are thicker than the photo's)."""
    import cv2

    h, w = photo_rgb.shape[:2]
    out = np.zeros((h, w), np.uint8)
    x0, y0 = np.clip(np.floor(outer_lips.min(0)).astype(int) - 2, 0, [w, h])
    x1, y1 = np.clip(np.ceil(outer_lips.max(0)).astype(int) + 3, 0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)  # only the lips' box is converted
    cv2.fillPoly(inside, [np.round(outer_lips - [x0, y0]).astype(np.int32)], 1)
    if not inside.any():
        return out
    red = cv2.cvtColor(np.ascontiguousarray(photo_rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2LAB)[..., 1].astype(np.float32)
    lips = np.percentile(red[inside > 0], 75)
    found = ((inside > 0) & (red < lips - NOT_LIP_A)).astype(np.uint8)
    out[y0:y1, x0:x1] = cv2.dilate(found, np.ones((3, 3), np.uint8))  # the mixed pixels at the teeth's edge
    return out


def observed_ibug(fit: PhotoFit, ids) -> np.ndarray | None:
    """The photo's detected iBUG points `ids` (original px): from observed68_px, else (a result without it) by
    name among the points the fit used; None when any is missing."""
    if fit.observed68_px is not None:
        return np.asarray(fit.observed68_px)[list(ids)]
    from ..landmarks.detect import MEDIAPIPE_TO_IBUG68

    names = {n: i for i, n in enumerate(fit.landmark_names)}
    rows = [names.get(f"ibug:{k}", names.get(f"mp:{int(MEDIAPIPE_TO_IBUG68[k])}")) for k in ids]
    return None if any(r is None for r in rows) else fit.landmarks_px[rows]


def ibug68(fit: PhotoFit) -> np.ndarray:
    """(68, 2) iBUG points of a photo (original px): the detected ones, else (a result without them, or a backend
    that missed some) the fitted mesh's own 68, projected."""
    pts = observed_ibug(fit, range(68))
    return pts if pts is not None else fit.model_landmarks68_px


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


def fill_unseen(
    albedo: np.ndarray, weight: np.ndarray, covered: np.ndarray, skin: np.ndarray | None = None
) -> np.ndarray:  # fmt: skip
    """Seen texels stay; unseen ones take their UV mirror where that was seen, then a smooth skin fill.

    `skin` (H, W), optional: the part of `weight` on skin-coloured texels; the smooth fill is then drawn from those
    alone (next to brows, lashes, lips and the edges of masked hair, their colours would tint a large hole: a blond
    fringe's tips made a dark forehead olive). Weights are feathered (blurred) before blending, so the borders
    between the three sources are soft."""
    import cv2

    mirrored, m_weight = albedo[:, ::-1], weight[:, ::-1]
    direct = np.clip(weight / 0.3, 0, 1)
    mirror = np.clip(m_weight / 0.3, 0, 1) * (1 - direct)
    colour = (direct[..., None] * albedo + mirror[..., None] * mirrored) / np.maximum(direct + mirror, 1e-8)[..., None]
    known = np.clip(direct + mirror, 0, 1) * covered
    sources = known
    if skin is not None:
        on_skin = np.clip(skin / 0.3, 0, 1)
        sources = np.clip(direct * on_skin + mirror * on_skin[:, ::-1], 0, 1) * covered
        if sources.sum() < 0.01 * max(known.sum(), 1.0):  # (almost) no skin seen: from whatever was
            sources = known
    smooth = push_pull(colour, sources)
    feather = cv2.GaussianBlur(known.astype(np.float32), (0, 0), sigmaX=max(albedo.shape[0] / 256, 1.0))
    alpha = np.minimum(known, feather)[..., None]
    return np.clip(alpha * colour + (1 - alpha) * smooth, 0, 1)
