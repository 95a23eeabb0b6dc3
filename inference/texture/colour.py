"""Colour constancy for the albedo: the camera's white balance and exposure as explicit unknowns.

A photo's linear colour is gain ⊙ albedo × shading, where the per-channel `gain` folds together the camera's
white balance and exposure and the light's colour and strength. The luminance shading (texture/albedo.py) takes
out how the light varies over the face; this module estimates the gain, so that a warm, dim or bluish photo does
not turn the skin orange, dark or grey.

The gain is a MAP estimate in log-RGB (Gaussian cues, a two-part prior) from cues that each see it with a known spread
(`ColourPrior`, measured on the CC BY studio portraits, whose one light and camera define gain = 1):
- the de-lit skin against the skin-albedo model of those portraits, and the eye whites (sclera), lit by the
  same light, as one joint Gaussian: they tell the light's colour. Not its level: between people both darken
  together with the skin, so read as exposure they would lighten dark skin and darken light skin. The level is
  decided first, and then the skin's darkness tells what colour skin that dark has (light skin is pinker);
- the scene around the head: its shades of grey tell the light's colour (a natural scene's spread), its median
  log luminance the exposure (metering puts it near the studio's, with a judged spread). Where the photo is so
  bright that most of the scene clipped (a pale backdrop at +1 EV), a lower quantile of what did not clip stands in,
  against the studio's same quantile (`exposure`);
- the prior on natural light, a mixture: a camera that white-balanced (±12 mired about neutral: a person's own
  skin colour is then not read as the light's), or a light it left uncorrected (3000–7500 K); exposure ±1 EV.
  The prior that explains the cues best (weight × evidence) is used.
Each cue is optional: a tight crop with no scene keeps the studio's exposure and leans on the skin and eye whites
for the colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRIOR_FILE = Path(__file__).resolve().parents[2] / "assets" / "colour_prior.npz"

# linear sRGB <-> CIE XYZ (D65), IEC 61966-2-1
RGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
D65_XYZ = np.array([0.95047, 1.0, 1.08883])
REFERENCE_KELVIN = 6500.0  # the white point the studio portraits' camera is taken to be balanced for
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])

SCLERA_MIN_PIXELS = 12  # fewer eye-white pixels than this (a squint, a tiny face): the cue is left out
# The scene cue needs at least this share of the image outside the head and its hair: in a tight crop what is
# left is mostly hair and shoulders (one UTKFace crop's 5 % of black hair read as 3 EV under-exposed).
SCENE_MIN_SHARE = 0.2
MAX_EXPOSURE = 1.5 * np.log(2)  # the exposure correction stays within ±1.5 EV, the light prior's reach
SCENE_P = 6.0  # Minkowski norm of the shades-of-grey estimate (Finlayson & Trezzi 2004): leans on bright surfaces
# Per-pixel measurement noise of a cue, in log units, shrinking with the square root of its pixel count.
PIXEL_NOISE = 0.3
LEVEL_FREE = 100.0  # log² variance along grey given to a cue whose level must not count
TONE_FREE = 100.0  # log² variance added along the skin-tone axis (ColourPrior.tone_axis)
# A camera's own white balance leaves about ±12 mired about neutral (judged); BALANCED_SHARE of photos are so.
BALANCED_KELVIN = (6000.0, 7100.0)
BALANCED_SHARE = 0.8
# The gain's level is its luminance-weighted log (a light's colour at the same lux leaves it nearly unchanged);
# CHROMA (3, 2) is an orthonormal basis of the log gains of level 0: the light's colour.
CHROMA = np.linalg.svd(LUMINANCE[None, :])[2][1:].T
# Spread of a scene's median log luminance about where metering puts it (≈ 0.5 EV: matrix metering leaves
# high- and low-key scenes off its target by about that much): judged, not measured here.
SCENE_KEY_SIGMA = 0.35
# Quantiles of the scene's log luminance that can stand for its exposure: the median, or where more than half the
# scene clipped (its luminance at SCENE_CLIP or more) the highest of them at least SCENE_CLIP_MARGIN below the clipped
# share. A clipped backdrop counted as its clipped value read a photo at +1 EV as 0.35 log (0.5 EV) darker than it
# was (bench/skin_tone.py: +1 EV variant 7.2 ΔE); the quantile that did not clip reads it within 0.02 log (median
# over 48 portraits), at the cost of more spread between people (the darkest tenth is hair and clothes).
SCENE_QUANTILES = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5])
SCENE_CLIP = 0.9  # linear luminance: a pixel this bright has lost a channel, or all of them
SCENE_CLIP_MARGIN = 0.1
# A black-and-white photo (3 % of the UTKFace crops, stored as RGB): at most this many 8-bit levels between its
# channels at the MONOCHROME_QUANTILE of its pixels (JPEG's chroma noise leaves 1-3 levels in a grey photo;
# a colour photo's skin alone differs by 30-80 levels between red and blue).
MONOCHROME_LEVELS = 6.0
MONOCHROME_QUANTILE = 99
TONE_RANGE = 3.0  # a black-and-white photo's skin is placed on the skin model's tone axis within ±this many sd


def planckian_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body at `kelvin` (Kim et al.'s cubic fit of the Planckian locus, 1667–25000 K),
    scaled to unit luminance."""
    t = float(np.clip(kelvin, 1667.0, 25000.0))
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    rgb = XYZ_TO_RGB @ np.array([x / y, 1.0, (1 - x - y) / y])
    return rgb / (rgb @ LUMINANCE)


def white_balance_gain(kelvin: float) -> np.ndarray:
    """(3,) per-channel gain a camera balanced for REFERENCE_KELVIN records under a light of `kelvin` instead."""
    gain = planckian_rgb(kelvin) / planckian_rgb(REFERENCE_KELVIN)
    return gain / (gain @ LUMINANCE)


def linear_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of linear sRGB colours (..., 3)."""
    xyz = np.asarray(rgb, np.float64) @ RGB_TO_XYZ.T / D65_XYZ
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(np.maximum(xyz, 0)), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e76(a_rgb: np.ndarray, b_rgb: np.ndarray) -> np.ndarray:
    """CIE76 colour difference between linear sRGB colours."""
    return np.linalg.norm(linear_to_lab(a_rgb) - linear_to_lab(b_rgb), axis=-1)


def ita_degrees(rgb: np.ndarray) -> np.ndarray:
    """Individual typology angle of linear sRGB skin colours: atan((L* − 50) / b*) in degrees (> 55 very light,
    < −30 dark; Chardon et al. 1991)."""
    lab = linear_to_lab(rgb)
    return np.degrees(np.arctan2(lab[..., 0] - 50, lab[..., 2]))


def is_monochrome(linear: np.ndarray) -> bool:
    """Whether linear RGB colours (..., 3) are black and white (their channels equal up to JPEG noise): the face's
    colours, so that a grey backdrop around a small colour face does not count."""
    from .maps import linear_to_srgb

    pixels = linear.reshape(-1, 3)
    sample = 255 * linear_to_srgb(pixels[:: max(1, len(pixels) // 250_000)])  # a quarter million are plenty
    spread = sample.max(axis=1) - sample.min(axis=1)
    return bool(len(spread)) and bool(np.percentile(spread, MONOCHROME_QUANTILE) <= MONOCHROME_LEVELS)


@dataclass(frozen=True)
class Cue:
    """Observations `value` (k,) = `design` (k, 3) @ log gain + `mean` + noise of covariance `cov` (k, k)."""

    name: str
    value: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    design: np.ndarray


@dataclass(frozen=True)
class ColourPrior:
    """What the cues see at gain = 1 (the studio portraits), in log linear RGB, and the light's prior.

    Skin and eye whites are one joint Gaussian: between people they are not independent (darker skin came with
    darker, shadowed eye whites in the studio portraits), so an eye white darker than average says less about
    the exposure when the skin is dark too."""

    joint_mean: np.ndarray  # (6,) log skin colour, then log eye-white colour
    joint_cov: np.ndarray  # (6, 6) between people
    # (6,) the skin locus' bend: the mean moves by tone_curve × (t² − tone_t2) at tone t along tone_axis (light
    # skin is pinker than a straight line through medium and dark skin puts it)
    tone_curve: np.ndarray
    tone_t2: float  # mean t² over the portraits
    scene_cov: np.ndarray  # (3, 3) colour only: a natural scene's shades of grey about neutral
    scene_keys: np.ndarray  # (len(SCENE_QUANTILES),) the studio's scene log luminance at those quantiles (exposure)
    light_cov: np.ndarray  # (3, 3) the gain's own prior (colour temperature and exposure)

    @staticmethod
    def load(path: Path = PRIOR_FILE) -> ColourPrior | None:
        if not path.is_file():
            return None
        with np.load(path) as data:
            return ColourPrior(**{k: data[k].astype(np.float64) for k in ColourPrior.__dataclass_fields__})

    @property
    def tone_axis(self) -> np.ndarray:
        """(6,) unit vector: the main way people differ (darker skin, with its eye whites): the joint model's first
        principal axis."""
        return np.linalg.eigh(self.joint_cov)[1][:, -1]

    def skin_at(self, luminance: float) -> np.ndarray:
        """(3,) linear skin colour of the given luminance on the skin model's tone axis (with its bend): the colour
        the studio people's skin that light or dark has — what a black-and-white photo's skin most likely was."""
        t = np.linspace(-TONE_RANGE, TONE_RANGE, 601) * np.sqrt(np.linalg.eigvalsh(self.joint_cov)[-1])
        locus = (
            self.joint_mean[:3] + np.outer(t, self.tone_axis[:3]) + np.outer(t**2 - self.tone_t2, self.tone_curve[:3])
        )
        colours = np.exp(locus)
        best = np.argmin(np.abs(np.log(colours @ LUMINANCE) - np.log(max(luminance, 1e-4))))
        return colours[best] * (luminance / float(colours[best] @ LUMINANCE))

    def save(self, path: Path, **provenance: str) -> None:
        np.savez(path, **{k: getattr(self, k) for k in ColourPrior.__dataclass_fields__}, **provenance)


def light_covariance(kelvin_range: tuple[float, float] = (3000.0, 7500.0), ev_sigma: float = 1.0) -> np.ndarray:
    """(3, 3) log-gain covariance of natural light about the reference: colour temperatures spread uniformly
    over `kelvin_range` in mired (how photographers' filters step), and exposure with `ev_sigma` stops."""
    mired = np.linspace(1e6 / kelvin_range[1], 1e6 / kelvin_range[0], 64)
    logs = np.log([white_balance_gain(1e6 / m) for m in mired])
    colour = np.cov((logs - logs.mean(0)).T)
    exposure = (ev_sigma * np.log(2)) ** 2 * np.ones((3, 3))
    return colour + exposure + 1e-4 * np.eye(3)  # a little tint off the locus


@dataclass(frozen=True)
class Scene:
    """What the image shows around the head (scene_colour)."""

    colour: np.ndarray  # (3,) log shades-of-grey colour: the light's colour
    keys: np.ndarray  # (len(SCENE_QUANTILES),) log luminance at those quantiles: the exposure
    clipped: float  # share of its pixels at SCENE_CLIP luminance or brighter
    share: float  # its share of the image

    @staticmethod
    def none() -> Scene:
        """No scene (a tight crop): the studio's exposure is kept and the colour comes from the face alone."""
        return Scene(np.zeros(3), np.zeros(len(SCENE_QUANTILES)), 0.0, 0.0)


def scene_quantile(clipped: float) -> int:
    """Index into SCENE_QUANTILES of the quantile that stands for the exposure when `clipped` of the scene clipped
    (the lowest where none is far enough below the clipped share)."""
    usable = np.flatnonzero(SCENE_QUANTILES <= 1 - clipped - SCENE_CLIP_MARGIN)
    return int(usable[-1]) if len(usable) else 0


def exposure(prior: ColourPrior, scene: Scene) -> float:
    """The log gain's level (luminance-weighted): the scene's log luminance against the studio's at the same quantile
    (scene_quantile), shrunk by the light prior; 0 (the studio's exposure) without a scene.

    A lower quantile never reads the photo darker than its median does: the median, clipped or not, is a lower bound
    on the exposure (a clipped pixel was at least that bright). On one portrait at +1 EV the darkest 5 % of the
    scene (a dark shirt, 2.3 log below the studio's) read the photo 1.8 log under-exposed (38 ΔE); falling back to
    the clipped median for every such photo instead read the others about 0.25 log short (bench/skin_tone.py, 204
    portraits: median 3.37, p90 8.57)."""
    if scene.share < SCENE_MIN_SHARE:
        return 0.0
    i, median = scene_quantile(scene.clipped), len(SCENE_QUANTILES) - 1
    raw = float(scene.keys[i] - prior.scene_keys[i])
    if i != median:
        raw = max(raw, float(scene.keys[median] - prior.scene_keys[median]))
    var_prior = float(LUMINANCE @ prior.light_cov @ LUMINANCE)
    level = var_prior / (var_prior + SCENE_KEY_SIGMA**2) * raw
    return float(np.clip(level, -MAX_EXPOSURE, MAX_EXPOSURE))


def estimate_gain(cues: list[Cue], light_cov: np.ndarray, level: float = 0.0) -> tuple[np.ndarray, float]:
    """MAP log gain (3,) of the given level (LUMINANCE @ log gain) under one Gaussian light prior N(0, light_cov),
    and the log evidence of the cues under it (up to a constant shared by every prior). The cues and the prior
    decide the colour only: knowing the level, the skin's darkness tells what colour skin that dark has (the joint
    model), not the exposure."""
    prior_precision = np.linalg.inv(light_cov)
    offset = np.full(3, level)  # the log gain is offset + CHROMA @ c
    prior_cov = np.linalg.inv(CHROMA.T @ prior_precision @ CHROMA)
    prior_mean = -prior_cov @ CHROMA.T @ prior_precision @ offset  # c's prior given the level
    if not cues:
        return offset + CHROMA @ prior_mean, 0.0
    design = np.vstack([c.design for c in cues]) @ CHROMA
    residual = np.concatenate([c.value - c.mean - c.design @ offset for c in cues]) - design @ prior_mean
    noise = _block_diagonal([c.cov for c in cues])
    spread = design @ prior_cov @ design.T + noise  # the residual's covariance under this prior
    gain = prior_cov @ design.T @ np.linalg.solve(spread, residual)
    log_evidence = -0.5 * (residual @ np.linalg.solve(spread, residual) + np.linalg.slogdet(spread)[1])
    return offset + CHROMA @ (prior_mean + gain), float(log_evidence)


def light_priors(prior: ColourPrior) -> list[tuple[float, np.ndarray]]:
    """The light's colour prior as a mixture: most photos come from a camera that white-balanced (a tight spread
    about neutral, so a person's own skin colour is not read as the light's); the rest under a light it did not
    correct (3000–7500 K). Weights and covariances."""
    return [(BALANCED_SHARE, light_covariance(BALANCED_KELVIN)), (1 - BALANCED_SHARE, prior.light_cov)]


def photo_gain(cues: list[Cue], prior: ColourPrior, level: float) -> np.ndarray:
    """The log gain (3,) under the light prior that explains the cues best (weight × evidence)."""
    best, best_score = np.full(3, level), -np.inf
    for weight, cov in light_priors(prior):
        log_gain, evidence = estimate_gain(cues, cov, level)
        if evidence + np.log(weight) > best_score:
            best, best_score = log_gain, evidence + np.log(weight)
    return best


def _block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    n = sum(len(b) for b in blocks)
    out, at = np.zeros((n, n)), 0
    for b in blocks:
        out[at : at + len(b), at : at + len(b)] = b
        at += len(b)
    return out


def robust_colour(pixels: np.ndarray) -> np.ndarray:
    """Per-channel median of linear colours (N, 3), floored away from zero for the logs."""
    return np.maximum(np.median(pixels, axis=0), 1e-4)


def sclera_pixels(linear: np.ndarray, eye_polygons: list[np.ndarray]) -> np.ndarray:
    """(N, 3) linear colours of the eye whites inside the eye openings (working-px polygons): the brighter part
    (the iris, pupil, lashes and lid shadow are darker), without the brightest (the cornea's highlights)."""
    import cv2

    out = []
    for poly in eye_polygons:
        mask = np.zeros(linear.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        inside = linear[mask > 0]
        if len(inside) < 8:
            continue
        lum = inside @ LUMINANCE
        low, high = np.percentile(lum, [60, 97])
        out.append(inside[(lum >= low) & (lum <= high)])
    return np.concatenate(out) if out else np.zeros((0, 3), np.float32)


def scene_colour(linear: np.ndarray, face_mask: np.ndarray) -> Scene:
    """The scene outside `face_mask` (the head and its hair, dilated): its shades-of-grey colour, the quantiles of
    its log luminance (the median is near what a camera's metering aims at middle grey), the share of it that
    clipped, and the share of the image it comes from. Near-black pixels do not count, nor clipped ones in the
    colour (in the quantiles they do, as the upper part of the scene they are: left out, an overexposed backdrop
    would make the photo look darker)."""
    outside = linear[~face_mask]
    outside = outside[outside @ LUMINANCE > 0.01]
    share = len(outside) / max(face_mask.size, 1)
    unclipped = outside[outside.max(axis=1) < 0.95]
    if len(unclipped) == 0:
        return Scene.none()
    grey = np.log(np.maximum(np.mean(unclipped**SCENE_P, axis=0) ** (1 / SCENE_P), 1e-4))
    luminance = outside @ LUMINANCE
    keys = np.quantile(np.log(luminance), SCENE_QUANTILES)
    return Scene(grey - grey @ LUMINANCE, keys, float(np.mean(luminance >= SCENE_CLIP)), share)


def measurement_cov(n_pixels: int) -> np.ndarray:
    return (PIXEL_NOISE**2 / max(n_pixels, 1)) * np.eye(3)


def photo_cues(prior: ColourPrior, skin: np.ndarray | None, sclera: np.ndarray, scene: Scene) -> list[Cue]:
    """The cues one photo offers: `skin` its de-lit skin colour (3,) (None: too little skin), `sclera` its eye-white
    pixels (N, 3), `scene` from scene_colour."""
    rows, values, names = [], [], []
    extra = np.zeros((6, 6))
    mean = prior.joint_mean
    if skin is not None:
        rows, values, names = [0, 1, 2], [np.log(skin)], ["skin"]
    if len(sclera) >= SCLERA_MIN_PIXELS:
        rows += [3, 4, 5]
        values.append(np.log(robust_colour(sclera)))
        names.append("sclera")
        extra[3:, 3:] = measurement_cov(len(sclera))
    cues = []
    if rows:
        # Where a photo lies along the skin-tone axis is the person's, not the light's: with a flat prior along it,
        # the colour comes from what is off the axis (a shrunk tone read light skin as cool light, dark as warm).
        extra += TONE_FREE * np.outer(prior.tone_axis, prior.tone_axis)
        cov = (prior.joint_cov + extra)[np.ix_(rows, rows)]
        design = np.tile(np.eye(3), (len(rows) // 3, 1))
        value = np.concatenate(values)
        axis = prior.tone_axis[rows]
        tone = axis @ (value - mean[rows]) / (axis @ axis)
        cues.append(
            Cue("+".join(names), value, mean[rows] + prior.tone_curve[rows] * (tone**2 - prior.tone_t2), cov, design)
        )
    if scene.share >= SCENE_MIN_SHARE:  # its colour about neutral (grey world); its level is `exposure`'s
        cov = prior.scene_cov + LEVEL_FREE * np.ones((3, 3))
        cues.append(Cue("scene", scene.colour, np.full(3, scene.colour @ LUMINANCE), cov, np.eye(3)))
    return cues
