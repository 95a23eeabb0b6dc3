"""Eyes (numpy + OpenCV): each eye's iris measured in the photos, and one small eyeball texture from them.

Measuring. Per photo and eye, the iris is found as the dark disc between the eye's corners (iBUG 36/39 and
42/45): a search over circles for the strongest dark-inside / bright-outside step across the circle's left
and right flanks (the limbus against the sclera; the top is under the upper lid and its lashes), pulled
towards the fitted mesh's pupil (the fit turns the eyes onto the detector's iris centres where it gives
them). Its colour is the median, in linear RGB, of the pixels between the pupil and the limbal edge, the
top sector (lid, lashes and their shadow) and specular highlights left out and the extremes trimmed. The
photo's iris radius is turned into millimetres with the fitted camera's scale at the pupil and clamped to
the anatomical range. Photos and eyes are fused by confidence (edge contrast, pixels, how frontal the eye
is, the photo's fit confidence).

The texture. The eyeball sphere (inference/rig.py `uv_sphere`, pupil axis +z, +y up) is mapped by a
Lambert azimuthal equal-area projection about its front pole: a point at angle θ from the pupil axis and
azimuth φ lies at uv = ½ + ½·sin(θ/2)·(cos φ, sin φ). The front pole is the texture's centre, the back
pole its inscribed circle; u runs to the eye's +x, v up. The iris is painted with the photo's colour (the
median of the iris texels equals it exactly), its radial profile and, where the photo resolves it, its
pattern, over a plausible sclera with a dark limbal ring and a pupil.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..result import PhotoFit
from .maps import linear_to_srgb, srgb_to_linear

EYE_TEXTURE_SIZE = 512
EYEBALL_RADIUS_MM = 12.0  # an adult eyeball; the pipeline passes the rig sphere's own radius
IRIS_RADIUS_MM = (5.5, 6.5)  # anatomical range of the visible iris radius (limbus)
TYPICAL_IRIS_RADIUS_MM = 5.9  # when no photo measured it
PUPIL_SHARE = 0.3  # pupil radius / iris radius on the texture (a 3.5 mm pupil)
# The old procedural eye's iris (addon/build_material.py): what a head gets when no iris was found.
FALLBACK_IRIS_LINEAR = (0.25, 0.17, 0.10)
SCLERA_LINEAR = (0.70, 0.64, 0.60)  # slightly warm off-white, about sRGB (218, 210, 204)
# The iris's colour sample: these shares of the iris radius, between the pupil (with blur margin) and the limbal
# edge, and outside this half-angle around straight up (the upper lid, lashes and their shadow cover the top).
IRIS_SAMPLE = (0.42, 0.85)
TOP_SECTOR_DEG = 55.0
# Circle search, in units of the eye width (corner to corner): iris radius range and centre window.
SEARCH_RADIUS = (0.16, 0.32)  # above the largest pupil (≈ 0.1)
SEARCH_WINDOW = (0.30, 0.16)  # ± x, ± y around the prior
PRIOR_WEIGHT = 2.0  # score lost per (offset / eye width)² from the prior centre
# The iris radius is about 0.235 eye widths (corner to corner) in the portraits (bench/eyes.py's MediaPipe radii):
# score lost per (radius / eye width − that)², so a pale iris's strong pupil edge does not win over its limbus.
RADIUS_PRIOR = (0.235, 8.0)
FLANK_DEG = (-40.0, 60.0)  # the flanks' angles from the horizontal (negative: above), each side
DETAIL_MIN_RADIUS_PX = 14.0  # photo iris radius from which its pattern (not only its radial profile) is used
PROFILE_BINS = 8
MIN_PIXELS = 8


@dataclass(frozen=True)
class IrisMeasurement:
    """One eye in one photo. Pixel positions are the original photo's."""

    photo: str
    eye: str  # the subject's "right" or "left"
    centre_px: np.ndarray  # (2,) x, y
    radius_px: float
    radius_mm: float  # unclamped: the camera's scale at the pupil
    colour: np.ndarray  # (3,) linear RGB, the gain applied
    confidence: float  # 0..1
    pixels: int  # how many pixels the colour is the median of
    profile: np.ndarray | None  # (PROFILE_BINS, 3) colour / median across the iris (pupil -> limbus), or None
    detail: np.ndarray | None  # (A, R, 3) polar pattern / profile, NaN where not seen; None below DETAIL_MIN_RADIUS_PX

    def summary(self) -> dict:
        return {
            "photo": self.photo, "eye": self.eye, "centre_px": [round(float(v), 2) for v in self.centre_px],
            "radius_px": round(self.radius_px, 2), "radius_mm": round(self.radius_mm, 2),
            "srgb": [round(float(v), 4) for v in linear_to_srgb(self.colour)],
            "confidence": round(self.confidence, 3), "pixels": self.pixels,
        }  # fmt: skip


@dataclass(frozen=True)
class EyeTexture:
    """The eyeball texture and what it was made from (one texture serves both eyes)."""

    image: np.ndarray  # (S, S, 3) float32 linear RGB, row 0 at the top (v = 1), the sphere_uv layout
    iris_colour: np.ndarray  # (3,) linear RGB of the iris (the median of its texels)
    iris_radius_mm: float  # clamped to IRIS_RADIUS_MM
    eyeball_radius_mm: float
    measurements: tuple[IrisMeasurement, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def iris_angle(self) -> float:
        """Half-angle (radians) the iris subtends at the eyeball's centre."""
        return float(np.arcsin(min(self.iris_radius_mm / self.eyeball_radius_mm, 1.0)))

    def summary(self) -> dict:
        return {
            "iris_srgb": [round(float(v), 4) for v in linear_to_srgb(self.iris_colour)],
            "iris_radius_mm": round(self.iris_radius_mm, 2), "eyeball_radius_mm": round(self.eyeball_radius_mm, 2),
            "measured": [m.summary() for m in self.measurements], "notes": list(self.notes),
        }  # fmt: skip


@dataclass(frozen=True)
class EyeGeometry:
    """What the measurement needs of the model: the front-most vertex of each eyeball (subject's right, left;
    -1 where the model has none) and the radius of the rig's eyeball spheres."""

    pupil_vertices: np.ndarray  # (2,) int
    eyeball_radius_mm: float = EYEBALL_RADIUS_MM


# ---------------------------------------------------------------------------------------------------------------
# Colour


def linear_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB-primaries colours (..., 3)."""
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = np.asarray(rgb, np.float64) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(np.maximum(xyz, 0)), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e76(a_linear: np.ndarray, b_linear: np.ndarray) -> np.ndarray:
    """CIE76 ΔE between linear RGB colours."""
    return np.linalg.norm(linear_to_lab(a_linear) - linear_to_lab(b_linear), axis=-1)


def _luma(linear: np.ndarray) -> np.ndarray:
    """Perceptual lightness proxy (0..1): the sRGB-encoded luminance."""
    return linear_to_srgb(linear @ np.array([0.2126, 0.7152, 0.0722], np.float32))


# ---------------------------------------------------------------------------------------------------------------
# Measuring one eye


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W) or (H, W, C) float32 image at float pixel positions (any shape)."""
    import cv2

    mx, my = np.asarray(x, np.float32), np.asarray(y, np.float32)
    n, cols = mx.size, 1024  # remap's maps must stay under 32767 a side
    rows = -(-n // cols)
    maps = [np.pad(m.ravel(), (0, rows * cols - n)).reshape(rows, cols) for m in (mx, my)]
    out = cv2.remap(image, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, *image.shape[2:])[:n].reshape(*mx.shape, *image.shape[2:])


def find_iris(
    luma: np.ndarray, corners: np.ndarray, prior: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """The iris as a circle in an eye: (centre x, y, radius, contrast) in the image's pixels.

    `corners` (2, 2) are the eye's corners, `prior` a guess of the centre (else their midpoint). Each candidate
    circle scores the mean luminance step from just inside to just outside it along its left and right flanks;
    the prior costs PRIOR_WEIGHT × (offset / eye width)². The contrast returned is the weaker flank's step."""
    width = max(float(np.linalg.norm(corners[1] - corners[0])), 4.0)
    axis = (corners[1] - corners[0]) / width
    if axis[0] < 0:
        axis = -axis
    down = np.array([-axis[1], axis[0]])  # image y runs down
    centre0 = corners.mean(0) if prior is None else np.asarray(prior, np.float64)
    angles = np.radians(np.linspace(*FLANK_DEG, 9))
    # Flank directions in the eye's frame: right side (+axis), left side (-axis), both tilting down for +angle.
    dirs = np.concatenate([
        np.cos(angles)[:, None] * axis + np.sin(angles)[:, None] * down,
        -np.cos(angles)[:, None] * axis + np.sin(angles)[:, None] * down,
    ])  # fmt: skip

    def scores(cx: np.ndarray, cy: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = max(0.035 * width, 0.75)
        pts = np.stack([cx, cy], -1)[..., None, :]  # (..., 1, 2)
        outer = pts + (r[..., None, None] + step) * dirs
        inner = pts + np.maximum(r[..., None, None] - step, 0.5) * dirs
        diff = _sample(luma, outer[..., 0], outer[..., 1]) - _sample(luma, inner[..., 0], inner[..., 1])
        half = len(angles)
        sides = np.stack([diff[..., :half].mean(-1), diff[..., half:].mean(-1)], -1)
        return sides.mean(-1), sides.min(-1)

    def search(centre: np.ndarray, span: tuple[float, float], radii: np.ndarray, n: int) -> tuple:
        ox = np.linspace(-span[0], span[0], n) * width
        oy = np.linspace(-span[1], span[1], max(n // 2 + 1, 3)) * width
        gx, gy, gr = np.meshgrid(ox, oy, radii * width, indexing="ij")
        cx = centre[0] + gx * axis[0] + gy * down[0]
        cy = centre[1] + gx * axis[1] + gy * down[1]
        mean, weakest = scores(cx, cy, gr)
        offset2 = ((cx - centre0[0]) ** 2 + (cy - centre0[1]) ** 2) / width**2
        total = mean - (PRIOR_WEIGHT * offset2 if prior is not None else 0.0)
        total = total - RADIUS_PRIOR[1] * (gr / width - RADIUS_PRIOR[0]) ** 2
        best = np.unravel_index(np.argmax(total), total.shape)
        return np.array([cx[best], cy[best]]), float(gr[best]), float(weakest[best])

    radii = np.linspace(*SEARCH_RADIUS, 17)
    centre, radius, _ = search(centre0, SEARCH_WINDOW, radii, 25)
    fine = np.clip(radius / width + np.linspace(-0.015, 0.015, 7), *SEARCH_RADIUS)
    centre, radius, contrast = search(centre, (0.03, 0.03), fine, 7)
    return centre, radius, contrast


def _iris_pixels(
    shape: tuple[int, int], centre: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (ys, xs) whose centres lie in the iris sample annulus outside the top sector, and their share s of
    the radius."""
    r_out = radius * IRIS_SAMPLE[1]
    x0, x1 = int(np.floor(centre[0] - r_out)), int(np.ceil(centre[0] + r_out)) + 1
    y0, y1 = int(np.floor(centre[1] - r_out)), int(np.ceil(centre[1] + r_out)) + 1
    y0, y1, x0, x1 = max(y0, 0), min(y1, shape[0]), max(x0, 0), min(x1, shape[1])
    if y1 <= y0 or x1 <= x0:  # off the image
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    dx, dy = xs - centre[0], ys - centre[1]
    s = np.hypot(dx, dy) / max(radius, 1e-6)
    from_up = np.degrees(np.arctan2(np.abs(dx), -dy))  # 0 straight up, 180 straight down
    keep = (s >= IRIS_SAMPLE[0]) & (s <= IRIS_SAMPLE[1]) & (from_up > TOP_SECTOR_DEG)
    return ys[keep], xs[keep], s[keep]


def _clean(luma: np.ndarray) -> np.ndarray:
    """Which of the iris pixels to keep: highlights (far above the iris's level) and lash-dark pixels (far
    below) out, then the darkest and brightest 15 % of the rest."""
    med = np.median(luma)
    mad = max(float(np.median(np.abs(luma - med))) * 1.4826, 0.02)
    keep = (luma < med + 2.5 * mad) & (luma > med - 3.0 * mad)
    if keep.sum() >= MIN_PIXELS:
        lo, hi = np.percentile(luma[keep], (15, 85))
        keep &= (luma >= lo) & (luma <= hi)
    return keep


def measure_iris(
    linear: np.ndarray, corners: np.ndarray, prior: np.ndarray | None = None, gain: np.ndarray | None = None,
) -> IrisMeasurement | None:  # fmt: skip
    """One eye in a linear RGB image (H, W, 3), in its pixels (`corners` (2, 2) the eye's corners, `prior` a
    guess of the iris centre), or None when too few iris pixels are left. Photo, eye and millimetres are left
    for the caller (measure_photo).

    `gain` (3,) multiplies the linear colour: a photo's white balance and exposure correction (ones: none)."""
    linear = np.ascontiguousarray(linear, np.float32)
    luma = _luma(linear).astype(np.float32)
    centre, radius, contrast = find_iris(luma, np.asarray(corners, np.float64), prior)
    ys, xs, _ = _iris_pixels(luma.shape, centre, radius)
    if len(ys) < MIN_PIXELS:
        return None
    keep = _clean(luma[ys, xs])
    if keep.sum() < MIN_PIXELS // 2:
        return None
    colour = np.median(linear[ys, xs][keep], axis=0)
    gain = np.ones(3, np.float32) if gain is None else np.asarray(gain, np.float32)
    # Contrast of 0.12 in sRGB-encoded luminance on the weaker flank is a clear limbus; fewer than ~40 pixels
    # (a small or half-closed eye) count for less.
    confidence = float(np.clip(contrast / 0.12, 0.0, 1.0) * min(keep.sum() / 40.0, 1.0))
    profile = _profile(linear, luma, centre, radius, colour) if radius >= 4.0 else None
    detail = _detail(linear, luma, centre, radius, colour, profile) if radius >= DETAIL_MIN_RADIUS_PX else None
    return IrisMeasurement(
        "", "", centre, float(radius), float("nan"), (colour * gain).astype(np.float32), confidence, int(keep.sum()),
        profile, detail,
    )  # fmt: skip


def _profile_s() -> np.ndarray:
    return np.linspace(PUPIL_SHARE + 0.1, 0.92, PROFILE_BINS)


def _profile(linear, luma, centre, radius, colour) -> np.ndarray | None:
    """The iris's colour from pupil to limbus relative to its median (PROFILE_BINS, 3), from the flanks and the
    bottom (the sample's sectors), highlights and lashes out; None when a bin is empty."""
    from_up = np.radians(np.linspace(TOP_SECTOR_DEG + 5, 355 - TOP_SECTOR_DEG, 48))
    dirs = np.stack([np.sin(from_up), -np.cos(from_up)], -1)  # x, y (down)
    s = _profile_s()
    pts = centre + (s[:, None, None] * radius) * dirs  # (bins, angles, 2)
    lum = _sample(luma, pts[..., 0], pts[..., 1])
    rgb = _sample(linear, pts[..., 0], pts[..., 1])
    keep = _clean(lum.ravel()).reshape(lum.shape)
    out = np.empty((len(s), 3), np.float32)
    for i in range(len(s)):
        if keep[i].sum() < 3:
            return None
        out[i] = np.median(rgb[i][keep[i]], axis=0)
    out /= np.maximum(colour, 1e-4)
    ratio = np.stack([np.convolve(np.pad(out[:, c], 1, mode="edge"), [0.25, 0.5, 0.25], "valid") for c in range(3)], -1)
    return np.clip(ratio, 0.5, 1.6).astype(np.float32)


def _detail(linear, luma, centre, radius, colour, profile) -> np.ndarray:
    """The iris's pattern in polar form (64 azimuths from the eye's +x counter-clockwise as seen, 16 radii from
    the pupil to the limbus), relative to its median colour and profile; NaN where lids, lashes or highlights
    cover it."""
    azimuth = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    s = np.linspace(PUPIL_SHARE + 0.08, 0.92, 16)
    dirs = np.stack([np.cos(azimuth), -np.sin(azimuth)], -1)  # image y down: counter-clockwise as seen
    pts = centre + (s[None, :, None] * radius) * dirs[:, None, :]
    rgb = _sample(linear, pts[..., 0], pts[..., 1])
    lum = _sample(luma, pts[..., 0], pts[..., 1])
    keep = _clean(lum.ravel()).reshape(lum.shape)
    from_up = np.degrees(np.abs(np.arctan2(np.cos(azimuth), np.sin(azimuth))))  # 0 straight up
    keep &= (from_up > TOP_SECTOR_DEG)[:, None]
    base = colour * (np.interp(s, _profile_s(), profile[:, 0])[:, None] if profile is not None else 1.0)
    ratio = rgb / np.maximum(base, 1e-4)
    ratio[~keep] = np.nan
    return np.clip(ratio, 0.5, 1.6).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Photos -> measurements -> one texture


def _eye_corners(fit: PhotoFit) -> dict[str, np.ndarray]:
    """Each eye's corners (original px): the detected iBUG points, else the fitted mesh's."""
    pts = fit.observed68_px if fit.observed68_px is not None else fit.model_landmarks68_px
    pts = np.asarray(pts, np.float64)
    if len(pts) < 68:
        return {}
    return {"right": pts[[36, 39]], "left": pts[[42, 45]]}


def _pupils(fit: PhotoFit, geometry: EyeGeometry) -> tuple[dict[str, np.ndarray], float | None]:
    """The fitted mesh's pupils projected (original px) and the camera's pixels per millimetre there, across
    the face (so a turned head's foreshortening applies as it does to the iris's width)."""
    ids = np.asarray(geometry.pupil_vertices)
    if len(ids) != 2 or (ids < 0).any():
        return {}, None
    tips = fit.vertices[ids]
    px = fit.camera.project(tips)
    lateral = (tips[1] - tips[0]) / max(float(np.linalg.norm(tips[1] - tips[0])), 1e-9)
    mid = tips.mean(0)
    span = fit.camera.project(np.stack([mid - 0.005 * lateral, mid + 0.005 * lateral]))
    per_mm = float(np.linalg.norm(span[1] - span[0])) / 10.0
    return {"right": px[0], "left": px[1]}, per_mm if per_mm > 0 else None


def measure_photo(
    photo_rgb: np.ndarray, scale: float, fit: PhotoFit, geometry: EyeGeometry, gain: np.ndarray | None = None,
) -> list[IrisMeasurement]:  # fmt: skip
    """Both eyes of one photo (`photo_rgb` uint8 at working size, `scale` original px per working px)."""
    from ..images import to_working  # here: images imports Pillow, which the add-on's registration must not load

    corners = _eye_corners(fit)
    if not corners:
        return []
    pupils, per_mm = _pupils(fit, geometry)
    widths = {eye: float(np.linalg.norm(c[1] - c[0])) for eye, c in corners.items()}
    out = []
    for eye, c in corners.items():
        c = to_working(c, scale)
        prior = to_working(pupils[eye], scale) if eye in pupils else None
        # Only the eye's surroundings (the search reaches about ±0.6 eye widths) go to linear RGB.
        reach = max(float(np.linalg.norm(c[1] - c[0])), 4.0)
        around = np.vstack([c, c.mean(0, keepdims=True) if prior is None else prior[None]])
        lo = np.maximum(np.floor(around.min(0) - reach), 0).astype(int)
        hi = np.minimum(np.ceil(around.max(0) + reach), [photo_rgb.shape[1], photo_rgb.shape[0]]).astype(int)
        if (hi <= lo).any():
            continue
        crop = srgb_to_linear(photo_rgb[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float32) / 255.0)
        found = measure_iris(crop, c - lo, None if prior is None else prior - lo, gain)
        if found is None:
            continue
        found = dataclasses.replace(found, centre_px=found.centre_px + lo)
        radius = found.radius_px * scale
        # A turned head shows one eye narrower: it counts for less.
        frontal = widths[eye] / max(max(widths.values()), 1e-6)
        out.append(dataclasses.replace(
            found, photo=str(fit.path), eye=eye, centre_px=(found.centre_px + 0.5) * scale - 0.5, radius_px=radius,
            radius_mm=float(radius / per_mm) if per_mm else TYPICAL_IRIS_RADIUS_MM,
            confidence=float(found.confidence * frontal**2 * max(fit.confidence, 1e-3)),
        ))  # fmt: skip
    return out


def fuse_colour(colours: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Confidence-weighted mean of linear colours after dropping those more than 20 ΔE from the weighted median
    (a photo whose eye search went astray)."""
    colours, weights = np.asarray(colours, np.float64), np.maximum(np.asarray(weights, np.float64), 1e-6)
    order = np.argsort(colours, axis=0)
    median = np.empty(3)
    for c in range(3):
        cum = np.cumsum(weights[order[:, c]])
        median[c] = colours[order[np.searchsorted(cum, cum[-1] / 2), c], c]
    near = delta_e76(colours, median) <= 20.0
    if not near.any():
        near[:] = True
    return (weights[near, None] * colours[near]).sum(0) / weights[near].sum()


def bake_eyes(
    photos: Sequence[tuple[np.ndarray, float, PhotoFit]], geometry: EyeGeometry,
    gains: Sequence[np.ndarray | None] | None = None, size: int = EYE_TEXTURE_SIZE,
) -> EyeTexture:  # fmt: skip
    """The eyeball texture of one person from photos (rgb uint8 at working size, scale, fit), each photo's
    irises colour-corrected by its `gains` entry ((3,) linear multipliers; None: none)."""
    gains = list(gains) if gains is not None else [None] * len(photos)
    found = [m for (rgb, s, fit), g in zip(photos, gains, strict=True) for m in measure_photo(rgb, s, fit, geometry, g)]
    usable = [m for m in found if m.confidence > 0.02]
    notes = []
    if usable:
        w = np.array([m.confidence for m in usable])
        colour = fuse_colour(np.array([m.colour for m in usable]), w)
        radius_mm = float(np.average([m.radius_mm for m in usable], weights=w))
        profiles = [(m.profile, m.confidence) for m in usable if m.profile is not None]
        profile = (sum(p * c for p, c in profiles) / sum(c for _, c in profiles)) if profiles else None
        detailed = [m for m in usable if m.detail is not None]
        detail = max(detailed, key=lambda m: m.confidence).detail if detailed else None
    else:
        colour, radius_mm, profile, detail = np.array(FALLBACK_IRIS_LINEAR), TYPICAL_IRIS_RADIUS_MM, None, None
        notes.append("iris not found in any photo: default brown eyes")
    radius_mm = float(np.clip(radius_mm, *IRIS_RADIUS_MM))
    image = eye_texture(colour, radius_mm, geometry.eyeball_radius_mm, profile, detail, size)
    return EyeTexture(
        image, colour.astype(np.float32), radius_mm, geometry.eyeball_radius_mm, tuple(found), tuple(notes)
    )


def default_eye_texture(eyeball_radius_mm: float = EYEBALL_RADIUS_MM, size: int = EYE_TEXTURE_SIZE) -> EyeTexture:
    """The eye of a head without photos of its irises (flat textures of an older result): the old brown."""
    colour = np.array(FALLBACK_IRIS_LINEAR, np.float32)
    image = eye_texture(colour, TYPICAL_IRIS_RADIUS_MM, eyeball_radius_mm, size=size)
    return EyeTexture(image, colour, TYPICAL_IRIS_RADIUS_MM, eyeball_radius_mm, (), ("default eyes",))


# ---------------------------------------------------------------------------------------------------------------
# The texture


def sphere_uv(directions: np.ndarray) -> np.ndarray:
    """UVs (N, 2) of unit directions from the eyeball's centre (+z the pupil axis, +y up): the Lambert
    azimuthal equal-area map about the front pole."""
    d = np.asarray(directions, np.float64)
    theta = np.arccos(np.clip(d[..., 2], -1.0, 1.0))
    phi = np.arctan2(d[..., 1], d[..., 0])
    rho = 0.5 * np.sin(theta / 2)
    return np.stack([0.5 + rho * np.cos(phi), 0.5 + rho * np.sin(phi)], -1)


def sphere_loop_uvs(unit_vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """One UV per face corner (F * 3, 2) of a unit sphere mesh: the back pole (where the map is a circle) takes
    its azimuth from the other corners of each triangle."""
    corners = np.asarray(unit_vertices, np.float64)[np.asarray(faces)]  # (F, 3, 3)
    at_back = corners[..., 2] < -1 + 1e-9
    if at_back.any():
        others = np.where(at_back[..., None], 0.0, corners)[..., :2].sum(1)  # (F, 2)
        toward = others / np.maximum(np.linalg.norm(others, axis=-1, keepdims=True), 1e-12)
        fixed = np.concatenate([toward * 1e-6, np.full((len(corners), 1), -1.0)], -1)
        corners = np.where(at_back[..., None], fixed[:, None, :], corners)
    return sphere_uv(corners.reshape(-1, 3)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def texel_angles(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(θ, φ, on_sphere) of each texel centre: angle from the pupil axis, azimuth from +x towards +y (read-only,
    made once per size)."""
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, 1.0 - c)  # row 0 at the top: v = 1
    du, dv = u - 0.5, v - 0.5
    rho = np.hypot(du, dv)
    out = 2 * np.arcsin(np.clip(2 * rho, 0.0, 1.0)), np.arctan2(dv, du), rho <= 0.5
    for array in out:
        array.flags.writeable = False
    return out


def iris_share(theta: np.ndarray, iris_angle: float) -> np.ndarray:
    """Distance from the pupil axis as a share of the iris radius (front hemisphere; beyond 90° it grows on)."""
    return np.where(theta < np.pi / 2, np.sin(theta), 2 - np.sin(theta)) / np.sin(iris_angle)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def eye_texture(
    colour: np.ndarray, iris_radius_mm: float, eyeball_radius_mm: float = EYEBALL_RADIUS_MM,
    profile: np.ndarray | None = None, detail: np.ndarray | None = None, size: int = EYE_TEXTURE_SIZE, seed: int = 7,
) -> np.ndarray:  # fmt: skip
    """(size, size, 3) float32 linear RGB: sclera, limbal ring, iris (median = `colour`), pupil, in sphere_uv's
    layout. `profile` and `detail` are the photo's (IrisMeasurement); fine radial fibres are added either way."""
    colour = np.asarray(colour, np.float64)
    iris_angle = float(np.arcsin(min(iris_radius_mm / eyeball_radius_mm, 0.99)))
    theta, phi, _ = texel_angles(size)
    s = iris_share(theta, iris_angle)
    rng = np.random.default_rng(seed)

    # Iris: the photo's radial profile, its pattern where it was resolved, and fibres (radial streaks).
    ratio = np.ones((size, size, 3))
    if profile is not None:
        ps = _profile_s()
        ratio *= np.stack([np.interp(s, ps, profile[:, c]) for c in range(3)], -1)
    fibres = np.zeros((size, size))
    for k, amp in ((23, 0.05), (41, 0.04), (67, 0.035), (97, 0.03)):
        fibres += amp * np.sin(k * phi + rng.uniform(0, 2 * np.pi) + 2.5 * rng.uniform(-1, 1) * s)
    fibres *= _smoothstep(PUPIL_SHARE, PUPIL_SHARE + 0.1, s)
    ratio *= (1.0 + fibres)[..., None]
    if detail is not None:
        ratio *= _polar_lookup(detail, s, phi)
    iris = colour * ratio
    inner = (s > PUPIL_SHARE + 0.05) & (s < IRIS_SAMPLE[1]) & (theta < np.pi / 2)
    iris *= colour / np.maximum(np.median(iris[inner], axis=0), 1e-6)  # the iris's median is the photo's colour
    # Limbal ring: the iris darkens over its last 12 % into a dark band that fades into the sclera.
    ring = colour * 0.25
    iris = iris + (ring - iris) * _smoothstep(0.88, 1.0, s)[..., None]

    # Sclera: off-white, warmer and a little darker towards the limbus and the back, faint vessels on the sides.
    sclera = np.broadcast_to(np.asarray(SCLERA_LINEAR), (size, size, 3)).copy()
    near = np.exp(-np.maximum(theta - iris_angle, 0) / 0.35)
    sclera *= (1 - 0.15 * near)[..., None]
    sclera *= (1 - 0.1 * _smoothstep(np.pi / 2, np.pi, theta))[..., None] * np.array([1.0, 0.93, 0.9])
    sclera = sclera * _vessel_shade(size)
    edge = _smoothstep(1.0, 1.1, s)[..., None]
    out = iris * (1 - edge) + sclera * edge
    # Pupil, with a soft edge.
    pupil = _smoothstep(PUPIL_SHARE + 0.03, PUPIL_SHARE - 0.03, s)[..., None]
    out = out * (1 - pupil) + np.array([0.008, 0.008, 0.01]) * pupil
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _vessel_shade(size: int) -> np.ndarray:
    """(size, size, 3) multiplier drawing a few faint reddish vessels on the nasal and temporal sides, from the back
    towards (not onto) the limbus; the same for every eye, so made once per size."""
    theta, phi, _ = texel_angles(size)
    fade = _smoothstep(0.85, 1.3, theta) * _smoothstep(2.4, 1.8, theta)  # beyond the largest iris (0.57 rad)
    where = fade > 0
    th, ph, fade = theta[where], phi[where], fade[where]
    across = np.sin(th) / 0.01  # arc length on the unit sphere per radian of azimuth, over the vessel's width
    rng = np.random.default_rng(11)
    keep = np.ones(th.shape)
    for side in (0.0, np.pi):
        for _ in range(4):
            base = side + rng.uniform(-0.6, 0.6)
            wave, phase = rng.uniform(0.03, 0.08), rng.uniform(0, 2 * np.pi)
            off = (ph - base - wave * np.sin(4 * th + phase) + np.pi) % (2 * np.pi) - np.pi
            keep *= 1 - 0.35 * np.exp(-((off * across) ** 2)) * fade
    tint = np.array([0.75, 0.45, 0.42])  # the darkening a vessel brings, per channel: red passes
    shade = np.ones((size, size, 3), np.float32)
    shade[where] = 1 - (1 - keep)[:, None] * (1 - tint)
    shade.flags.writeable = False
    return shade


def _polar_lookup(detail: np.ndarray, s: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The photo's polar pattern at each texel (NaN azimuths filled from the mirrored side, else 1); 1 outside the
    iris."""
    d = detail.copy()
    n_az = d.shape[0]
    mirrored = d[(n_az // 2 - np.arange(n_az)) % n_az]  # azimuth a -> π - a: the other flank of the same eye
    d = np.where(np.isnan(d), mirrored, d)
    d = np.where(np.isnan(d), 1.0, d)
    a = (phi % (2 * np.pi)) / (2 * np.pi) * n_az
    i0 = np.floor(a).astype(int) % n_az
    t = (a - np.floor(a))[..., None, None]
    rows = d[i0] * (1 - t) + d[(i0 + 1) % n_az] * t  # (H, W, R, 3)
    rs = np.linspace(PUPIL_SHARE + 0.08, 0.92, d.shape[1])
    j = np.clip(np.searchsorted(rs, s) - 1, 0, len(rs) - 2)
    w = np.clip((s - rs[j]) / (rs[j + 1] - rs[j]), 0, 1)[..., None]
    val = (
        np.take_along_axis(rows, j[..., None, None], axis=2)[..., 0, :] * (1 - w)
        + np.take_along_axis(rows, (j + 1)[..., None, None], axis=2)[..., 0, :] * w
    )
    inside = ((s >= PUPIL_SHARE) & (s <= 1.0))[..., None]
    return np.where(inside, val, 1.0)


def texture_iris_colour(texture: EyeTexture | np.ndarray, iris_angle: float | None = None) -> np.ndarray:
    """The iris colour a texture shows (linear RGB): the median of its texels between the pupil and the limbal
    ring (IRIS_SAMPLE's outer share)."""
    image = texture.image if isinstance(texture, EyeTexture) else texture
    angle = texture.iris_angle if iris_angle is None else iris_angle
    theta, _, _ = texel_angles(image.shape[0])
    s = iris_share(theta, angle)
    inner = (s > PUPIL_SHARE + 0.05) & (s < IRIS_SAMPLE[1]) & (theta < np.pi / 2)
    return np.median(image[inner], axis=0)
