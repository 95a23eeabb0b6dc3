"""Occluders (hair, glasses, hands, cast shadows) kept out of the albedo: texture/occlusion.py and its use in the bake."""

from __future__ import annotations

import numpy as np

from facesmith.inference.texture import occlusion
from facesmith.inference.texture.albedo import TextureBaker
from facesmith.inference.texture.raster import uv_to_texel
from facesmith.training.synthetic import sample_head

from ..helpers import checked_albedo, render
from ..tiny_flame import exact_fit

SKIN = np.array([0.55, 0.36, 0.27])


def test_face_zones_keep_the_features(flame_model):
    zones = occlusion.face_zones(flame_model, 256)
    assert zones is not None
    corners = flame_model.uv_coords[flame_model.uv_faces[flame_model.static_lmk_faces]]
    texel = np.round(uv_to_texel(np.einsum("nk,nkc->nc", flame_model.static_lmk_bary, corners), 256)).astype(int)
    x, y = np.clip(texel[:, 0], 0, 255), np.clip(texel[:, 1], 0, 255)
    # Brows (17–26), eyes (36–47) and lips (48–59) lie in the zone that is never masked, not in the skin core.
    features = [i - 17 for i in (*range(17, 27), *range(36, 60))]
    assert zones.keep[y[features], x[features]].all()
    assert zones.core.sum() > 50 and not (zones.core & zones.keep).any()
    assert not (zones.reach & ~zones.keep).any()  # the reach is a part of the kept zones
    assert zones.lower[y[33 - 17] + 2 :].all() and not zones.lower[: int(y[27 - 17])].any()  # below the nose


def _uv_face(model, size: int = 256, seed: int = 0):
    """A seen face in UV: noisy skin on the baker's sampled texels, and the zones."""
    baker = TextureBaker(model, size)
    rng = np.random.default_rng(seed)
    albedo = SKIN * rng.uniform(0.9, 1.1, (size, size, 1)) * rng.uniform(0.97, 1.03, (size, size, 3))
    return baker, albedo.astype(np.float32), baker.sampled.copy()


def test_mask_finds_a_dark_band_and_spares_brows_and_moles(procedural_model):
    import cv2

    baker, albedo, seen = _uv_face(procedural_model)
    zones = baker.zones
    assert not occlusion.occluder_mask(albedo, seen, zones).any()  # plain skin: nothing masked
    free = seen & ~zones.keep & ~zones.core & ~zones.lower
    rows, cols = np.nonzero(free)
    # Hair down the side of the face, clear of the brows (a fringe over them: the next test).
    near_brows = cv2.dilate((zones.brows > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    band = free & (np.arange(256)[None, :] < cols.min() + 8) & ~near_brows
    albedo[band] = [0.04, 0.025, 0.02]
    albedo[zones.keep & seen & ~zones.reach] = [0.05, 0.035, 0.025]  # dark brows / lashes: features, kept
    r, c = rows[len(rows) // 2], cols[len(cols) // 2]
    albedo[r - 1 : r + 2, c - 1 : c + 2] = 0.03  # a mole: too small to be an occluder
    mask = occlusion.occluder_mask(albedo, seen, zones)
    assert band.sum() > 50
    iou = (mask & band).sum() / (mask | band).sum()
    assert iou > 0.6, iou
    assert not (mask & zones.keep & ~zones.reach).any()
    assert not mask[r - 1 : r + 2, c - 1 : c + 2].any()


def test_a_fringe_over_the_brows_hides_them_and_the_bake_paints_them(procedural_model):
    """Hair of the fringe's colour continuing from over the brows into their zones is masked there, and where it
    covers most of a brow the whole brow is masked; with no photo seeing either brow, the bake paints them in the
    fringe's colour. A fringe that stops above the brows, with skin between, leaves them alone."""
    import cv2

    baker, albedo, seen = _uv_face(procedural_model)
    zones = baker.zones
    hair = np.array([0.04, 0.025, 0.02])
    brows = seen & (zones.brows > 0)
    albedo[brows & (zones.brow_core > 0)] = [0.06, 0.04, 0.03]  # dark brows
    fringe = seen & zones.over_brows
    albedo[fringe] = hair
    # Down to the brows' zones, with skin between it and the brows themselves: they are kept.
    assert fringe.sum() > 50
    assert not (occlusion.occluder_mask(albedo, seen, zones) & brows).any()
    # Down over the brows: the zones' upper parts are hair too.
    albedo[brows & ~(zones.brow_core > 0) & (np.arange(256)[:, None] < np.nonzero(brows)[0].mean())] = hair
    mask = occlusion.occluder_mask(albedo, seen, zones)
    for side in (1, 2):
        core = seen & (zones.brow_core == side)
        assert core.sum() > 20 and mask[core].all(), side
    assert not (mask & zones.keep & (zones.brows == 0) & ~zones.reach).any()  # eyes and lips still kept

    colour = occlusion.hair_colour(albedo, mask, zones)
    assert colour is not None and np.abs(colour - hair).max() < 0.01
    filled = np.broadcast_to(SKIN, albedo.shape).astype(np.float32)
    weight = np.where(seen & ~mask, 1.0, 0.0)
    painted = occlusion.paint_hidden_brows(filled, weight, zones, [colour, None])
    core = zones.brow_core > 0
    share = (SKIN - painted[core]) / (SKIN - hair)  # 0 skin .. 1 hair, per texel and channel
    assert 0.25 < np.median(share) <= occlusion.BROW_ALPHA and share.std() > 0.05  # hair strokes, not a flat band
    assert np.abs(painted - filled)[~(cv2.dilate(core.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0)].max() == 0
    # A brow that a photo saw is not painted over; nor anything without a fringe colour.
    assert (occlusion.paint_hidden_brows(filled, np.ones_like(weight), zones, [colour]) == filled).all()
    assert (occlusion.paint_hidden_brows(filled, weight, zones, [None]) == filled).all()
    # A blond fringe over dark skin: the brow is painted darker than the skin, in the fringe's hue.
    blond, dark = np.array([0.45, 0.35, 0.15]), np.array([0.08, 0.05, 0.04])
    brow = occlusion.brow_colour(blond, dark)
    luminance = np.array([0.2126, 0.7152, 0.0722])
    assert brow @ luminance <= occlusion.BROW_DARKER * (dark @ luminance) + 1e-9
    assert np.allclose(brow / brow.sum(), blond / blond.sum())
    assert np.allclose(occlusion.brow_colour(hair, SKIN), hair)  # dark hair on light skin: as it is


def test_the_network_alone_masks_what_it_marks_and_spares_the_features(procedural_model):
    """occluder_mask with the segmentation network's P(not skin) only (colour off): a confident patch of skin-coloured
    texels (a light hand the colour model cannot see) is masked; the same probability in the kept zones is not
    (but for the eyes' frame zones: the next test); a weak one nowhere."""
    baker, albedo, seen = _uv_face(procedural_model)
    zones = baker.zones
    free = seen & ~zones.keep & ~zones.core
    rows, cols = np.nonzero(free)
    r, c = rows[len(rows) // 2], cols[len(cols) // 2]
    patch = np.zeros_like(seen)
    patch[r - 12 : r + 12, c - 12 : c + 12] = True
    patch &= free
    learned = np.where(patch | zones.keep, 0.95, 0.1).astype(np.float32)
    mask = occlusion.occluder_mask(albedo, seen, zones, learned=learned, colour=False)
    assert patch.sum() > 100 and (mask & patch).sum() > 0.9 * patch.sum()
    assert not (mask & zones.keep & ~zones.reach & ~zones.eye_frames).any()
    weak = np.where(patch, 0.6, 0.1).astype(np.float32)  # above the grow level but no seed
    assert not occlusion.occluder_mask(albedo, seen, zones, learned=weak, colour=False).any()


def test_a_glasses_rim_is_masked_into_the_eyes_zones_only_from_outside(procedural_model):
    """A frame's lower rim runs through the kept zone around an eye: where the network marks it as a continuation
    of a frame outside the kept zones it is masked there too; the same marks inside the eye's zone alone are not
    (lashes, make-up), and the colour model alone masks no deeper into the eyes' zones than the reach, however
    dark the rim."""
    import cv2

    baker, albedo, seen = _uv_face(procedural_model)
    zones = baker.zones
    frames = zones.eye_frames & seen
    assert frames.any() and not (frames & (zones.brows > 0)).any() and not (frames & zones.eye_rings).any()
    # A band through one eye's frame zone and out of the kept zones on both sides (a rim and a temple).
    ys, xs = np.nonzero(frames)
    y = int(np.median(ys))
    band = np.zeros_like(seen)
    band[y - 3 : y + 4, :] = True
    band &= seen & (frames | ~zones.keep)
    n, labels = cv2.connectedComponents(band.astype(np.uint8), connectivity=8)
    inner = band & frames
    touching = np.unique(labels[inner])
    band = np.isin(labels, touching[touching > 0]) & (labels > 0)
    assert (band & ~zones.keep).sum() > 50 and (band & frames).sum() > 20
    learned = np.where(band, 0.95, 0.02).astype(np.float32)
    mask = occlusion.occluder_mask(albedo, seen, zones, learned=learned, colour=False)
    assert (mask & band & frames).sum() > 0.8 * (band & frames).sum()
    alone = np.where(band & frames, 0.95, 0.02).astype(np.float32)  # only inside the eye's zone
    assert not (occlusion.occluder_mask(albedo, seen, zones, learned=alone, colour=False) & frames).any()
    dark = albedo.copy()
    dark[band] = [0.02, 0.02, 0.02]
    deep = frames & ~zones.reach  # the colour model follows an occluder only this far in, as before
    assert not (occlusion.occluder_mask(dark, seen, zones) & deep).any()


def test_keep_factor_is_zero_on_the_mask_and_one_away():
    mask = np.zeros((64, 64), bool)
    mask[20:30, 20:30] = True
    factor = occlusion.keep_factor(mask)
    assert (factor[mask] == 0).all() and factor[0, 0] == 1 and factor[40:, 40:].min() == 1
    assert 0 < factor[25, 31] < 1  # a soft edge
    assert (occlusion.keep_factor(np.zeros((8, 8), bool)) == 1).all()


def _occluded_render(model, fit, colour=(8, 6, 5)):
    """The head of helpers.render with a dark disc (a hand, a hair strand bundle) painted over one cheek."""
    import cv2

    rgb = render(model, fit)
    baker = TextureBaker(model, 256, learned_occluders=False)  # the colour model (the checkered head is no face)
    part = baker.photo_texture(rgb, 1.0, fit)
    zones = baker.zones
    free = (part.weight > 0.5) & ~zones.keep & ~zones.core & ~zones.lower
    inner = cv2.distanceTransform(free.astype(np.uint8), cv2.DIST_L2, 5)  # the free texel farthest from the zones
    row, col = np.unravel_index(np.argmax(inner), inner.shape)
    centre = part.pixels[row, col]
    occluded = rgb.copy()
    cv2.circle(occluded, (int(centre[0]), int(centre[1])), 24, colour, -1)
    disc = np.zeros(rgb.shape[:2], np.uint8)
    cv2.circle(disc, (int(centre[0]), int(centre[1])), 24, 1, -1)
    px = np.round(part.pixels).astype(int)
    region = (part.weight > 0) & (disc[np.clip(px[..., 1], 0, 511), np.clip(px[..., 0], 0, 511)] > 0)
    return baker, rgb, occluded, region


def test_bake_treats_occluded_texels_as_unseen(procedural_model):
    fit = exact_fit(procedural_model, sample_head(procedural_model, np.random.default_rng(0)))
    baker, clean, occluded, region = _occluded_render(procedural_model, fit)
    assert region.sum() > 100
    part = baker.photo_texture(occluded, 1.0, fit)
    assert part.occluded_fraction > 0.01 and baker.photo_texture(clean, 1.0, fit).occluded_fraction == 0
    assert (part.occluded & region).sum() > 0.8 * region.sum()
    assert (part.weight[part.occluded] == 0).all()

    rows, cols = np.mgrid[:256, :256]
    truth = checked_albedo(np.stack([(cols.ravel() + 0.5) / 256, 1 - (rows.ravel() + 0.5) / 256], 1))
    truth = truth.reshape(256, 256, 3)

    def error(albedo):  # relative to the truth, after a gain per channel (one photo cannot tell albedo from light,
        # and colour constancy reads this checker's un-skin-like colour partly as the light's)
        est, tru = albedo[region], truth[region]
        return float(np.median(np.abs(est * (est * tru).sum(0) / (est * est).sum(0) - tru) / tru))

    masked_set = baker.bake([(occluded, 1.0, fit)])[0]
    masked = masked_set.albedo
    unmasked = TextureBaker(procedural_model, 256, occluders=False).bake([(occluded, 1.0, fit)])[0].albedo
    assert error(unmasked) > 0.5 and error(masked) < 0.1  # the fill (mirror first) covers the occluder
    assert masked_set.occluded_fractions == (part.occluded_fraction,)
    assert len(masked_set.occluded_pixels[0]) == part.occluded.sum()  # where they are in the photo

    # With a second photo that sees the skin there, that photo wins.
    alone = baker.bake([(clean, 1.0, fit)])[0].albedo
    both = baker.bake([(occluded, 1.0, fit), (clean, 1.0, fit)])[0]
    assert np.abs(both.albedo - alone)[region].max() < 0.02
    assert len(both.occluded_fractions) == 2 and both.occluded_fractions[1] == 0


def test_the_skin_fill_keeps_clear_of_the_mask(procedural_model):
    """The fill does not draw from texels right next to a photo's mask (mixed pixels of the occluder's edge)."""
    from facesmith.inference.texture.albedo import FILL_CLEAR_1024

    baker = TextureBaker(procedural_model, 256, learned_occluders=False)
    mask = np.zeros((256, 256), bool)
    mask[100:110, 100:110] = True
    clear = baker._clear_of(mask)
    reach = round(FILL_CLEAR_1024 * 256 / 1024)
    assert not clear[mask].any() and not clear[105, 110 + reach - 1] and clear[105, 110 + reach + 1]
    assert baker._clear_of(None).all() and baker._clear_of(np.zeros_like(mask)).all()


def test_skin_model_of_a_grey_photo_is_usable():
    """A greyscale photo has no chroma spread at all: the model stays invertible (it once raised LinAlgError)."""
    from facesmith.inference.texture.occlusion import _robust_model, skin_features

    grey = np.random.default_rng(0).uniform(0.2, 0.8, (500, 1)).repeat(3, axis=1)
    mean, cov = _robust_model(skin_features(grey))
    assert np.isfinite(mean).all() and np.linalg.cond(cov) < 1e6


def test_dark_rings_around_the_eyes_are_lifted_and_lighter_lids_kept(flame_model):
    baker, albedo, seen = _uv_face(flame_model)
    zones = baker.zones
    assert zones.eye_rings.any() and zones.ring_reference.any()
    assert not (zones.eye_rings & zones.ring_reference).any() and not (zones.eye_rings & (zones.brows > 0)).any()
    ring = zones.eye_rings & seen
    rings = albedo.copy()
    rings[ring] *= 0.3  # lashes and lid shadows baked in
    lifted = occlusion.lift_eye_rings(rings, zones, seen.astype(np.float32))
    lum = lambda a: a @ occlusion.LUMINANCE  # noqa: E731
    skin = np.median(lum(albedo[zones.ring_reference & seen]))
    assert np.median(lum(lifted[ring])) > 0.9 * skin
    np.testing.assert_array_equal(lifted[~zones.eye_rings], rings[~zones.eye_rings])  # nothing else changes
    lighter = albedo.copy()
    lighter[ring] *= 1.2  # a light lid (or make-up) is no ring: untouched
    np.testing.assert_array_equal(occlusion.lift_eye_rings(lighter, zones, seen.astype(np.float32)), lighter)
