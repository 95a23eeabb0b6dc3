"""Which seen face texels show skin, and which show something in front of it (hair, glasses, a hand, a cast shadow).

Two markers, combined:
- A segmentation network (OccluderNet, assets/occluder_seg.onnx, trained by training/occluders.py on
  `facesmith synth` renders): P(not skin) over the dense network's 128² face crop, sampled at each texel's pixel.
- A per-person skin colour model: the robust mean and covariance of (chromaticity r, g; log luminance) of the
  de-lit albedo on reliably-skin texels (nose and inner cheeks, from the landmark embedding placed in FLAME's UV
  layout; where the photo's rough skin-colour test agrees). Texels far from it (Mahalanobis distance) are
  candidates: dark hair, frames and cast shadows stand out by luminance (the albedo is de-lit, so a shadow the
  smooth light cannot explain stays dark), hands and blond hair by chromaticity. With the network, only texels it
  does not call certain skin (P >= COLOUR_GATE) may be marked by colour: alone, the colour model takes make-up,
  lid creases and the shading of dark skin for occluders (7 % of clean faces, 16 % of one dark-skinned face).
Strong seeds (either marker) grow into connected weaker neighbours (hysteresis), after a closing and with small
blobs (moles, pores, nostril shadows) dropped. The zones around the eyes (lashes, lids, make-up), lips and nostrils
are masked only where an occluder from outside runs a little way into them (a frame, a hand); below the nose (beards,
stubble, the shadow under the jaw, which belong to the head) only large colour departures count. The brows' zones
only where a fringe masked just above them continues into them (not skin, of the fringe's colour, joined to it: the
network takes a fringe's lower edge for brows); a brow mostly covered so is masked whole, and a brow no photo saw on
either side is painted in the fringe's colour in a brow's shape drawn from the landmark embedding (paint_hidden_brows).

Measured (bench/occluders.py, 10 portraits × fringe / long fringe / glasses / hand / shadow, and in-model renders
with a known texture): the network with the gated colour model keeps clean faces unmasked (0 % vs 7 % for colour
alone), mask IoU 0.97 / 0.87 / 0.59 / 0.90 / 0.86, about 55 ms a photo at 1024²; the brow rule takes the error in
the brows' zones under a fringe from 58 to 21 sRGB levels (a long fringe 66 to 21). Without the network's file (or
onnxruntime) the colour model works alone. The network learned hair from rendered hair caps and strands, then real
hair pasted as fringes and hands cut from other heads' skin (a light hand over dark skin).

Masked texels get zero weight in albedo.py: they count as unseen, so another photo that sees the skin wins and
otherwise the mirror and the fill cover them.

No bpy, no torch: numpy, OpenCV and onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..flame.model import FlameModel
from ..flame.paths import PACKAGE_ROOT
from .displacement import LUMINANCE
from .raster import uv_to_texel

SEG_METADATA_KEY = "facesmith_occluder_seg"  # the segmentation network's ONNX metadata (training/occluders.py)
SEG_MODEL = PACKAGE_ROOT / "assets" / "occluder_seg.onnx"
LEARNED_GROW = 0.5  # the network's P(not skin) of a texel joined to a masked region
LEARNED_SEED = 0.8  # ... of one that starts a region by itself
COLOUR_GATE = 0.1  # with the network: the colour model may mark only texels it gives at least this P(not skin)
SEED_SIGMA = 6.0  # Mahalanobis distance of a texel that certainly is not skin
GROW_SIGMA = 3.5  # ... of one that is not skin when joined to a seed
# Floors of the skin model's spread (chromaticity r, g; log luminance): an evenly coloured face, or a
# synthetic one, would otherwise make every shading misfit and quantisation step an outlier.
MIN_SPREAD = np.array([0.01, 0.01, 0.2])
BRIGHTER = 0.5  # brighter than the skin counts this much (a light hand on dark skin; not highlights)
LOWER = 0.4  # distances below the nose count this much (beards, stubble, the shadow under the jaw)
EYE_PAD = 0.6  # eye widths around each eye opening that are kept (lashes, lids, make-up)
REACH = 0.2  # how far, in eye widths, an occluder may be followed into the eyes', lips' and nostrils' zones
RING = 0.3  # the eye rings' zone: this many eye widths around the lid margin (lashes, lid shadows, eyeliner)
RING_REFERENCE = 0.6  # the periocular skin a ring is compared with: out to this many eye widths
RING_FLOOR = 0.8  # ring texels darker than this share of that skin's luminance are lifted
MIN_RING_REFERENCE = 50  # seen reference texels needed to judge the rings
# The brow drawn where a fringe hides both (eye widths): thick at the head, thin at the tail, a little below the
# iBUG points, which run along the brow's upper edge. Chosen by overlaying it on the portraits' visible brows.
BROW_HEAD, BROW_TAIL, BROW_DROP, BROW_TAIL_REACH = 0.3, 0.15, 0.08, 0.35
BROW_HIDDEN = 0.5  # a brow whose seen core is masked this much is hidden as a whole (mirrored or painted)
HAIR_BAND = 0.3  # eye widths above the brows' zones where a fringe's colour is measured
HAIR_SIGMA = 4.5  # Mahalanobis distance from that colour within which a brow texel joined to the fringe is fringe
BROW_ALPHA = 0.8  # opacity of a painted brow (skin shows through a real one)
BROW_SOFT_1024 = 3.0  # Gaussian sigma, texels at 1024², of its edge
BROW_DARKER = 0.35  # a painted brow's luminance at most this share of the skin's
BROW_STRANDS = 0.4  # share of a painted brow's opacity that comes from its hair strokes
BROW_HAIR_1024 = 10.0  # length of a brow hair stroke, texels at 1024²
SEEN_WEIGHT = 0.05  # summed photo weight of a texel that counts as seen
DARKER_HAIR = 0.3  # luminance below the fringe's counts this much
MIN_HAIR = 50  # masked texels over the brows needed to model a fringe's colour
MIN_BLOB_1024 = 400  # texels at 1024²: smaller masked blobs (moles, pores, specks) are kept as skin
MARGIN_1024 = 4  # texels at 1024² the mask grows by (mixed pixels at hair and frame edges)
FEATHER_1024 = 3.0  # Gaussian sigma, texels at 1024², of the mask's soft edge in the photo weight


@dataclass(frozen=True)
class FaceZones:
    """Regions of the UV layout, (H, W) bool each."""

    keep: np.ndarray  # brows, eyes and lashes, lips, nostrils: never masked, except that ...
    reach: np.ndarray  # ... an occluder from outside may run this far into the eyes', lips' and nostrils' zones
    core: np.ndarray  # nose and inner cheeks: the skin colour model is estimated here
    lower: np.ndarray  # below the nose (beard, stubble): only a chromaticity change counts
    brows: np.ndarray  # (H, W) uint8: the brows' zones (part of keep), 1 for iBUG 17-21, 2 for 22-26
    brow_core: np.ndarray  # (H, W) uint8: the brows themselves within them, labelled alike (a painted brow's shape)
    over_brows: np.ndarray  # (H, W) bool: the forehead just above the brows (where a fringe's colour is measured)
    # (H, W) bool: the lids and the skin around each eye opening, where lashes and their shadows fall
    # (lift_eye_rings), and the periocular skin just outside it that says how light that skin is
    eye_rings: np.ndarray | None = None
    ring_reference: np.ndarray | None = None
    # (H, W) bool: the eyes' kept zones beyond their rings, where a glasses frame's rims run: the network's marks
    # (not the colour model's: make-up and lid creases) may continue an occluder from outside into them
    eye_frames: np.ndarray | None = None


def face_zones(model: FlameModel, size: int) -> FaceZones | None:
    """The zones from the 51 static iBUG landmarks of the model's embedding, drawn in UV; None without one."""
    import cv2

    if model.static_lmk_faces is None:
        return None
    corners = model.uv_coords[model.uv_faces[model.static_lmk_faces]]  # (51, 3, 2)
    uv = np.einsum("nk,nkc->nc", model.static_lmk_bary, corners)
    pts = np.full((68, 2), np.nan)
    pts[17:] = uv_to_texel(uv, size)

    def poly(ids) -> np.ndarray:
        return np.round(pts[list(ids)] * 16).astype(np.int32)

    eye_w = 0.5 * (np.linalg.norm(pts[39] - pts[36]) + np.linalg.norm(pts[45] - pts[42]))
    if not np.isfinite(eye_w) or eye_w < 1:
        return None

    def disc(radius: float) -> np.ndarray:
        r = max(1, round(radius))
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)

    keep = np.zeros((size, size), np.uint8)
    for ids, pad in ((range(36, 42), EYE_PAD), (range(42, 48), EYE_PAD), (range(48, 60), 0.5), (range(31, 36), 0.25)):
        part = np.zeros_like(keep)  # eyes with lashes, lids and make-up; lips with their margin; nostrils
        cv2.fillPoly(part, [poly(ids)], 1, cv2.LINE_8, 4)
        keep |= cv2.dilate(part, disc(pad * eye_w))
    brows, brow_core = np.zeros_like(keep), np.zeros_like(keep)
    for label, ids in ((1, range(17, 22)), (2, range(22, 27))):
        side = np.zeros_like(keep)
        cv2.polylines(side, [poly(ids)], False, 1, max(1, round(0.55 * eye_w)), cv2.LINE_8, 4)
        brows[cv2.dilate(side, disc(0.25 * eye_w)) > 0] = label
        brow_core[brow_shape(pts[list(ids)], eye_w, size)] = label
    # A glasses frame or a hand crosses into the generous zones around the eyes and lips: it may be followed
    # in a little way (not into the brows, which a fringe touches).
    reach = (cv2.dilate((keep == 0).astype(np.uint8), disc(REACH * eye_w)) > 0) & (brows == 0)
    keep = (keep > 0) | (brows > 0)

    core = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(poly([*range(36, 48), 48, 50, 52, 54]))
    cv2.fillConvexPoly(core, hull, 1, cv2.LINE_8, 4)
    core = (core > 0) & ~keep

    lower = np.zeros((size, size), bool)
    nose_base = pts[33, 1]
    lower[int(np.clip(np.ceil(nose_base), 0, size)) :] = True
    rows = np.arange(size)[:, None]
    over = (cv2.dilate((brows > 0).astype(np.uint8), disc(HAIR_BAND * eye_w)) > 0) & ~keep & (rows < pts[27, 1])
    rings, reference, frames = (np.zeros_like(keep, np.uint8) for _ in range(3))
    for ids in (range(36, 42), range(42, 48)):
        opening = np.zeros_like(rings)
        cv2.fillPoly(opening, [poly(ids)], 1, cv2.LINE_8, 4)
        ring = cv2.dilate(opening, disc(RING * eye_w))
        rings |= ring & (1 - opening)
        reference |= cv2.dilate(opening, disc(RING_REFERENCE * eye_w)) & (1 - ring)
        frames |= cv2.dilate(opening, disc(EYE_PAD * eye_w)) & (1 - ring)
    no_brows = brows == 0
    return FaceZones(keep, reach & keep, core, lower, brows, brow_core, over, (rings > 0) & no_brows,
                     (reference > 0) & no_brows & ~over, (frames > 0) & no_brows & keep)  # fmt: skip


def lift_eye_rings(albedo: np.ndarray, zones: FaceZones, weight: np.ndarray) -> np.ndarray:
    """The albedo with the dark rings around the eyes lifted: in each eye's ring zone, texels darker than
    RING_FLOOR × the periocular skin's median luminance (seen texels of `weight` > 0 just outside the ring) are
    blended towards that skin's colour, fully at half the floor. Lashes, the lids' shadows and eyeliner are baked
    there from the photo, and on a head seen from the side or with its own lashes they read as black rings."""
    if zones.eye_rings is None or not zones.eye_rings.any():
        return albedo
    reference = zones.ring_reference & (weight > 0)
    if reference.sum() < MIN_RING_REFERENCE:
        return albedo
    skin = np.median(albedo[reference], axis=0)
    floor = RING_FLOOR * float(skin @ LUMINANCE)
    ring = zones.eye_rings
    lum = albedo[ring] @ LUMINANCE
    blend = np.clip((floor - lum) / (0.5 * floor), 0, 1)[:, None]
    out = albedo.copy()
    out[ring] = albedo[ring] * (1 - blend) + skin * blend
    return out


def brow_shape(points: np.ndarray, eye_w: float, size: int) -> np.ndarray:
    """(size, size) bool: a brow along its five iBUG points (texels, in order from either end), BROW_HEAD eye widths
    thick at the end nearest the nose tapering to BROW_TAIL at the other, hanging BROW_DROP below the points."""
    import cv2

    medial_first = abs(points[0, 0] - size / 2) < abs(points[-1, 0] - size / 2)
    pts = np.array(points if medial_first else points[::-1], float)
    # FLAME's embedding puts the outermost point down on the temple; the brow's tail ends a third of the way there.
    pts[-1] = pts[-2] + BROW_TAIL_REACH * (pts[-1] - pts[-2])
    dense = np.concatenate([np.linspace(a, b, 8, endpoint=False) for a, b in zip(pts[:-1], pts[1:], strict=True)])
    dense = np.vstack([dense, pts[-1]])
    along = np.linspace(0, 1, len(dense))
    out = np.zeros((size, size), np.uint8)
    for (x, y), t in zip(dense, along, strict=True):
        thick = eye_w * (BROW_HEAD + (BROW_TAIL - BROW_HEAD) * t)
        centre = (round(16 * x), round(16 * (y + BROW_DROP * eye_w)))
        cv2.circle(out, centre, max(1, round(8 * thick)), 1, -1, cv2.LINE_8, 4)
    return out > 0


def skin_features(albedo: np.ndarray) -> np.ndarray:
    """(N, 3): chromaticity r, g and log luminance of linear RGB colours."""
    total = albedo.sum(axis=1) + 1e-6
    lum = albedo @ np.array([0.2126, 0.7152, 0.0722]) + 1e-4
    return np.column_stack([albedo[:, 0] / total, albedo[:, 1] / total, np.log(lum)])


def _robust_model(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the central 75 % of the samples (by Mahalanobis distance, three times, as in
    minimum-covariance-determinant C-steps), corrected for the trim; spreads floored at MIN_SPREAD."""
    mean = np.median(x, axis=0)
    cov = _floored(np.diag((1.4826 * np.median(np.abs(x - mean), axis=0)) ** 2))
    for _ in range(3):
        d = x - mean
        r2 = _mahalanobis2(d, cov)
        inner = x[r2 <= np.percentile(r2, 75)]
        mean = inner.mean(axis=0)
        cov = _floored(np.cov(inner.T) / 0.62)  # the central 75 % of a 3-D normal has 0.62 of its variance
    return mean, cov


def _mahalanobis2(x: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """(N,) squared Mahalanobis distances of the rows of `x` (already centred) under `cov`."""
    return np.einsum("nc,cd,nd->n", x, np.linalg.inv(cov), x)


def _joined(region: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(H, W) bool: the 8-connected parts of `region` that hold an `anchors` texel."""
    import cv2

    n, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    hit = np.zeros(n, bool)
    hit[np.unique(labels[anchors & region])] = True
    hit[0] = False
    return hit[labels]


def _floored(cov: np.ndarray) -> np.ndarray:
    """Spreads raised to MIN_SPREAD: keeps the covariance invertible (a grey photo has no chroma spread at
    all) and an evenly coloured face from flagging its own shading errors."""
    return cov + np.diag(np.maximum(MIN_SPREAD**2 - np.diag(cov), 0))


def skin_distance(albedo: np.ndarray, seen: np.ndarray, zones: FaceZones, skin: np.ndarray | None) -> np.ndarray:
    """(H, W) float32: each seen texel's Mahalanobis distance from the person's skin colour model (0 where unseen,
    and everywhere when too little of the core is seen to estimate the model)."""
    distance = np.zeros(seen.shape, np.float32)
    core = seen & zones.core
    if skin is not None and (core & skin).sum() >= max(100, 0.1 * core.sum()):
        core &= skin  # frames across the cheeks, a hand: the robust model copes with some, not with a third
    if core.sum() < 100:
        return distance
    mean, cov = _robust_model(skin_features(albedo[core]))
    x = skin_features(albedo[seen]) - mean
    x[:, 2] = np.where(x[:, 2] > 0, BRIGHTER * x[:, 2], x[:, 2])  # highlights and light make-up are skin
    full = np.sqrt(np.maximum(_mahalanobis2(x, cov), 0))
    # On the lower face beards, stubble and the shadow under the jaw are darker and a little differently
    # coloured, and belong to the head: only larger departures count there.
    distance[seen] = np.where(zones.lower[seen], LOWER * full, full)
    return distance


def occluder_mask(
    albedo: np.ndarray, seen: np.ndarray, zones: FaceZones, skin: np.ndarray | None = None,
    learned: np.ndarray | None = None, colour: bool = True,
) -> np.ndarray:  # fmt: skip
    """(H, W) bool: seen texels that show no skin. `albedo` (H, W, 3) linear de-lit colour, `seen` (H, W) bool;
    `skin` (H, W) bool, optional: texels of roughly skin colour, where the skin model is estimated if enough;
    `learned` (H, W), optional: the segmentation network's P(not skin) at each texel (OccluderNet), which grows
    and seeds regions as the colour distance does; `colour` False: the network alone."""
    import cv2

    size = seen.shape[0]
    ungated = skin_distance(albedo, seen, zones, skin)
    distance = ungated if colour else np.zeros(seen.shape, np.float32)
    if learned is not None:  # where the network is sure of skin, a colour departure is make-up, a lid crease...
        distance = np.where(learned >= COLOUR_GATE, distance, 0.0)
    free = seen & (~zones.keep | zones.reach)
    weak = (distance > GROW_SIGMA) & free
    seeds = distance > SEED_SIGMA
    region = free  # where the mask may be
    if learned is not None:
        if zones.eye_frames is not None:
            region = free | (seen & zones.eye_frames)
        weak |= (learned > LEARNED_GROW) & region
        seeds |= learned > LEARNED_SEED
    weak = weak.astype(np.uint8)
    if not weak.any():
        return np.zeros_like(seen)
    scale = size / 1024
    close = max(1, round(2 * scale))
    weak = cv2.morphologyEx(weak, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * close + 1,) * 2))
    weak &= region.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    strong = np.bincount(labels[seeds & (weak > 0)], minlength=n)
    big = stats[:, cv2.CC_STAT_AREA] >= MIN_BLOB_1024 * scale * scale
    good = (strong > 0) & big
    good[0] = False
    mask = good[labels].astype(np.uint8)
    if not mask.any():
        return np.zeros_like(seen)
    # Into the reach zones (and the eyes' frame zones) only as a continuation of an occluder outside them.
    mask = _joined(mask > 0, ~zones.keep).astype(np.uint8)
    margin = max(1, round(MARGIN_1024 * scale))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)) > 0
    mask &= region
    return mask | fringe_over_brows(albedo, seen, zones, mask & (ungated > SEED_SIGMA), ungated)


def hair_colour(albedo: np.ndarray, mask: np.ndarray, zones: FaceZones) -> np.ndarray | None:
    """(3,) linear colour, the median, of what a mask covers over and around the brows but not on them (a fringe's
    hair: the colour a hidden brow is painted in); None when too little is masked there."""
    hair = mask & ((zones.brows > 0) | zones.over_brows) & (zones.brow_core == 0)
    return np.median(albedo[hair], axis=0) if hair.sum() >= MIN_HAIR else None


def paint_hidden_brows(albedo: np.ndarray, weight: np.ndarray, zones: FaceZones, colours: list) -> np.ndarray:
    """The filled texture with a brow painted (brow_core's shape, soft-edged, in brow_colour of the median of
    `colours`, the photos' hair_colour) on each side whose brow no photo saw, on either side of the face (a fringe
    over both brows): the fill alone would leave a browless forehead. `weight` (H, W): the photos' summed weights."""
    import cv2

    found = [c for c in colours if c is not None]
    if not found:
        return albedo
    seen = weight > SEEN_WEIGHT
    colour = brow_colour(np.median(found, axis=0), np.median(albedo[seen], axis=0) if seen.any() else None)
    seen |= seen[:, ::-1]  # a brow seen on the other side is mirrored by the fill
    paint = np.zeros(weight.shape, np.float32)
    for side in (1, 2):
        core = zones.brow_core == side
        if core.any() and seen[core].mean() < 1 - BROW_HIDDEN:
            paint[core] = 1.0
    if not paint.any():
        return albedo
    size = albedo.shape[0]
    alpha = cv2.GaussianBlur(paint, (0, 0), max(BROW_SOFT_1024 * size / 1024, 0.5))
    alpha *= 1 - BROW_STRANDS + BROW_STRANDS * brow_hairs(paint > 0, size)
    alpha = BROW_ALPHA * alpha
    return albedo * (1 - alpha[..., None]) + colour * alpha[..., None]


def brow_colour(hair: np.ndarray, skin: np.ndarray | None) -> np.ndarray:
    """(3,) linear: the fringe's colour, darkened (chromaticity kept) to at most BROW_DARKER of the skin's
    luminance: brows read darker than the skin on nearly everyone, also under a blond fringe on dark skin."""
    if skin is None:
        return hair
    cap = BROW_DARKER * float(skin @ LUMINANCE)
    return hair * min(1.0, cap / max(float(hair @ LUMINANCE), 1e-6))


def brow_hairs(region: np.ndarray, size: int) -> np.ndarray:
    """(H, W) float32 0..1: short strokes over `region` running out from the face's middle and a little up, as
    brow hairs grow (a flat brow reads as painted on). Seeded: the same texture every run."""
    import cv2

    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(region)
    out = np.zeros(region.shape, np.float32)
    if not len(rows):
        return out
    length = BROW_HAIR_1024 * size / 1024
    for k in rng.choice(len(rows), size=min(len(rows), max(1, len(rows) // 6)), replace=False):
        y, x = rows[k], cols[k]
        out_dir = 1.0 if x >= size / 2 else -1.0
        angle = np.radians(rng.uniform(5, 40))
        dx, dy = out_dir * np.cos(angle) * length, -np.sin(angle) * length
        cv2.line(out, (int(x), int(y)), (int(x + dx), int(y + dy)), float(rng.uniform(0.6, 1.0)), 1, cv2.LINE_AA)
    # Strokes a texel wide alias into hatching at 512²: soften them to a hair's width at that size.
    return np.clip(cv2.GaussianBlur(out, (0, 0), 0.6 * size / 1024 + 0.3), 0, 1)


def fringe_over_brows(
    albedo: np.ndarray, seen: np.ndarray, zones: FaceZones, hair: np.ndarray, distance: np.ndarray
) -> np.ndarray:  # fmt: skip
    """(H, W) bool: brow-zone texels that continue a fringe masked above them — not skin (`distance` from the skin
    model beyond GROW_SIGMA), of the fringe's colour and joined to it — and, on a side where that covers most of the
    seen brow, the whole brow (what shows there is the fringe's edge, not the brow: it is mirrored from the other
    side or painted, see paint_hidden_brows). `hair`: texels certainly masked and certainly not skin.

    Neither marker finds these by itself: the network learned brows as skin and takes a fringe's lower edge for
    them, and the colour model may not mark the brows (they are dark hair too)."""
    hair = hair & zones.over_brows
    if hair.sum() < MIN_HAIR:
        return np.zeros_like(seen)
    mean, cov = _robust_model(skin_features(albedo[hair]))
    x = skin_features(albedo[seen]) - mean
    x[:, 2] = np.where(x[:, 2] < 0, DARKER_HAIR * x[:, 2], x[:, 2])  # the fringe's shadowed lower edge is hair too
    near = np.zeros_like(seen)
    near[seen] = _mahalanobis2(x, cov) < HAIR_SIGMA**2
    candidates = near & (zones.brows > 0) & (distance > GROW_SIGMA)
    out = candidates & _joined(candidates | hair, hair)
    for side in (1, 2):
        core = seen & (zones.brow_core == side)
        if core.any() and (out & core).sum() > BROW_HIDDEN * core.sum():
            out |= core
    return out


def keep_factor(mask: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1]: 0 on the mask, rising softly to 1 outside it (photo weights are multiplied by it)."""
    import cv2

    if not mask.any():
        return np.ones(mask.shape, np.float32)
    sigma = max(FEATHER_1024 * mask.shape[0] / 1024, 0.5)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)
    return np.where(mask, 0.0, np.clip(1 - 2 * soft, 0, 1)).astype(np.float32)


class OccluderNet:
    """The segmentation network (training/occluders.py) on onnxruntime, CPU: P(not skin) over the dense
    network's crop of a face. Small (about 0.2 M parameters): a few ms a photo."""

    def __init__(self, path: str | Path = SEG_MODEL) -> None:
        import json

        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if SEG_METADATA_KEY not in meta:
            raise ValueError(f"{path}: not a Facesmith occluder network (no {SEG_METADATA_KEY} metadata)")
        self.size = int(json.loads(meta[SEG_METADATA_KEY])["input_size"])

    def not_skin(self, rgb: np.ndarray, points68: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """P(not skin) (S, S) float32 over the crop around the 68 points (pixels of `rgb`), and the crop box."""
        from ..landmarks.dense import crop_box, crop_image

        box = crop_box(points68)
        logits = self.session.run(None, {"image": crop_image(rgb, box, self.size)[None]})[0][0, 0]
        return (1 / (1 + np.exp(-logits))).astype(np.float32), box


def load_occluder_net(path: str | Path = SEG_MODEL) -> OccluderNet | None:
    """The network, or None when its file or onnxruntime is missing (the colour model then works alone)."""
    if not Path(path).is_file():
        return None
    try:
        return OccluderNet(path)
    except ImportError:
        return None
