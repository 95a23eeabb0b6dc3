"""Textures from photos: UV raster, SH light estimation, hole filling, baking a render of known albedo and a
real portrait."""

from __future__ import annotations

import numpy as np
import pytest

from facesmith.inference.images import load_photo
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import Reconstructor
from facesmith.inference.texture.albedo import (
    SH_CONSTANTS,
    TextureBaker,
    fill_unseen,
    fit_skin_light,
    push_pull,
    sh_basis,
)
from facesmith.inference.texture.raster import rasterize_uv
from facesmith.inference.texture.visibility import depth_visible
from facesmith.training.synthetic import sample_head

from ..conftest import SHARED
from ..helpers import checked_albedo, render
from ..tiny_flame import exact_fit

FACES = SHARED / "data" / "faces"


def test_uv_raster_barycentrics_reproduce_uvs(flame_model):
    raster = rasterize_uv(flame_model, 256)
    if flame_model.is_development:
        assert 0.85 < raster.covered.mean() < 0.95  # FLAME's layout covers about 90 % of the square
    # Islands do not overlap: the texels covered add up to the UV triangles' area (cv2 adds edge texels).
    corners = flame_model.uv_coords[flame_model.uv_faces]
    area = np.abs(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])).sum() / 2
    assert area < raster.covered.mean() < area + 0.03
    rows, cols = np.nonzero(raster.covered)
    tri = raster.triangle[rows, cols]
    uv = np.einsum("nkc,nk->nc", flame_model.uv_coords[flame_model.uv_faces[tri]], raster.bary[rows, cols])
    # Interpolated UVs land on their own texel centres; edge texels are clamped onto their triangle.
    err = np.hypot(uv[:, 0] * 256 - 0.5 - cols, (1 - uv[:, 1]) * 256 - 0.5 - rows)
    # cv2 also fills texels whose centres lie just outside sliver triangles: a few clamp further.
    assert np.mean(err < 0.75) > 0.97 and np.percentile(err, 99.9) < 2.0


def test_sh_light_recovered_from_synthetic_shading():
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(5000, 3))
    normals[:, 2] = np.abs(normals[:, 2])  # visible hemisphere
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    light = np.zeros((9, 3))
    light[0], light[3], light[1] = 2.0, 0.8, 0.3  # ambient, frontal, from the side
    albedo = np.array([0.7, 0.5, 0.4])
    colour = albedo * (sh_basis(normals) @ light)
    sh, shading, warnings = fit_skin_light(sh_basis(normals), colour, np.ones(5000, bool), np.ones(5000, bool))
    de_lit = (colour / shading[:, None])[shading > 0.2]  # grazing the dark side it is clamped (a warning's case)
    assert not warnings
    assert np.std(de_lit / de_lit.mean(0), axis=0).max() < 1e-6  # constant albedo comes back constant
    np.testing.assert_allclose(sh_basis(normals) @ sh, colour, atol=1e-9)
    assert SH_CONSTANTS.shape == (9,)


def test_push_pull_fills_holes_smoothly():
    h = w = 64
    colour = np.zeros((h, w, 3), np.float32)
    weight = np.zeros((h, w), np.float32)
    colour[:, :32], weight[:, :32] = (1.0, 0.0, 0.0), 1.0
    colour[:, 40:], weight[:, 40:] = (0.0, 0.0, 1.0), 1.0
    out = push_pull(colour, weight)
    assert np.allclose(out[:, :32], (1, 0, 0)) and np.allclose(out[:, 40:], (0, 0, 1))
    gap = out[32, 32:40]
    assert (np.diff(gap[:, 0]) <= 1e-6).all() and (np.diff(gap[:, 2]) >= -1e-6).all()  # a ramp, not a step


def test_fill_uses_the_mirror_first():
    albedo = np.zeros((32, 32, 3), np.float32)
    weight = np.zeros((32, 32), np.float32)
    albedo[:, :10], weight[:, :10] = 0.8, 1.0  # left side seen
    filled = fill_unseen(albedo, weight, np.ones((32, 32), bool))
    assert np.allclose(filled[:, -6:], 0.8, atol=0.02)  # right side from its mirror
    assert np.isfinite(filled).all() and filled.min() >= 0


def test_fill_is_drawn_from_skin_when_told_which_texels_are_skin():
    """A hole bordered by skin on one side and a band of hair tips on the other: with `skin`, the smooth fill takes
    the skin's colour alone; without it, the hair tints it."""
    albedo = np.zeros((32, 32, 3), np.float32)
    weight = np.zeros((32, 32), np.float32)
    albedo[:, :] = (0.5, 0.3, 0.2)
    weight[20:, :] = 1.0  # skin seen below
    albedo[:8], weight[:8] = (0.9, 0.8, 0.3), 1.0  # blond hair tips seen above (left and right: no mirror help)
    covered = np.ones((32, 32), bool)
    skin = np.where(np.arange(32)[:, None] >= 20, weight, 0.0)
    hole = slice(10, 18)
    told = fill_unseen(albedo, weight, covered, skin)[hole]
    untold = fill_unseen(albedo, weight, covered)[hole]
    assert np.abs(told - (0.5, 0.3, 0.2)).max() < 0.02
    assert np.abs(untold - (0.5, 0.3, 0.2)).max() > 0.1
    assert np.allclose(fill_unseen(albedo, weight, covered, skin)[:5], (0.9, 0.8, 0.3), atol=1e-3)  # seen stay


def fit_result(model, paths):
    with Reconstructor(DEFAULTS, model) as reconstructor:
        return reconstructor.fit(paths)


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_bake_a_portrait(dev_model):
    result = fit_result(dev_model, [FACES / "002_03.jpg"])
    photo = load_photo(FACES / "002_03.jpg")
    baker = TextureBaker(dev_model, 512)
    textures, lights = baker.bake([(photo.rgb, photo.scale, result.photos[0])])
    part = baker.photo_texture(photo.rgb, photo.scale, result.photos[0])
    albedo = textures.albedo
    assert albedo.shape == (512, 512, 3) and np.isfinite(albedo).all() and 0 <= albedo.min() and albedo.max() <= 1
    covered = baker.raster.covered
    assert np.mean(albedo[covered].max(axis=1) < 0.02) < 0.005  # no black regions (a few lash texels at most)
    seen = part.weight > 0.5
    assert 0.1 < seen[covered].mean() < 0.5  # the face of one frontal photo
    # Skin colour comes from the photo: warm (red > blue) on the seen face.
    assert np.median(albedo[seen][:, 0]) > np.median(albedo[seen][:, 2])
    assert lights[0].shape == (9, 3) and lights[0][0].sum() > 0
    assert np.abs(textures.displacement).max() <= 0.0006 and np.abs(textures.displacement[~covered]).max() < 1e-9
    assert np.abs(textures.displacement[seen]).max() > 1e-5  # relief was recovered from the shading
    # Photo weights fade to zero at the face region's edge, where the mirror and the fill take over.
    import cv2

    edge = baker.sampled & (cv2.erode(baker.sampled.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    assert part.weight[edge].max() < 0.05


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_two_photos_fuse(dev_model):
    paths = [FACES / "004_03.jpg", FACES / "004_08.jpg"]
    result = fit_result(dev_model, paths)
    photos = [load_photo(p) for p in paths]
    baker = TextureBaker(dev_model, 256)
    textures, lights = baker.bake([(p.rgb, p.scale, fit) for p, fit in zip(photos, result.photos, strict=True)])
    assert len(lights) == 2 and np.isfinite(textures.albedo).all()
    # Both photos feed the albedo: where only the second sees (well), it is the second's (but for the feathered
    # borders and retouched eye rings: the median); where both see, it is not the first's alone.
    first, second = (baker.photo_texture(p.rgb, p.scale, fit) for p, fit in zip(photos, result.photos, strict=True))
    only_second = (first.weight == 0) & (second.weight > 0.3)
    both = (first.weight > 0) & (second.weight > 0.5 * first.weight)
    assert only_second.sum() > 100 and both.sum() > 1000  # texels of 256²
    assert np.median(np.abs(textures.albedo[only_second] - second.albedo[only_second]).max(axis=1)) < 0.003
    assert np.median(np.abs(textures.albedo[both] - first.albedo[both]).max(axis=1)) > 0.005


def _frontal_texels_seen(model, fit, image_hw: tuple[int, int], scale: float) -> tuple[int, float]:
    """With the head of `fit` turned 40°: how many sampled texels face the camera, and the share of them the
    depth test keeps."""
    import dataclasses

    from facesmith.inference.flame.forward import surface_points, vertex_normals

    turn = np.radians(40.0)
    rotation = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    centre = fit.vertices.mean(axis=0)
    turned = dataclasses.replace(fit, vertices=(fit.vertices - centre) @ rotation.T + centre)
    baker = TextureBaker(model, 512)
    tri, bary = baker.raster.triangle[baker.sampled], baker.raster.bary[baker.sampled]
    points = surface_points(turned.vertices[None], model.faces, tri, bary)[0]
    normals = surface_points(vertex_normals(turned.vertices, model.faces)[None], model.faces, tri, bary)[0]
    facing = normals[:, 2] / np.linalg.norm(normals, axis=1)
    px = (turned.camera.project(points) + 0.5) / scale - 0.5
    visible = depth_visible(turned.camera, turned.vertices, model.faces, scale, image_hw, px, points[:, 2])
    inside = (px > 0).all(axis=1) & (px[:, 0] < image_hw[1] - 1) & (px[:, 1] < image_hw[0] - 1)
    frontal = (facing > 0.5) & inside
    return int(frontal.sum()), float(visible[frontal].mean())


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_depth_test_keeps_oblique_surfaces(dev_model):
    """Texels on surfaces that face the camera are not hidden by their own (oblique) triangles: with the
    head turned 40°, the far cheek's steep triangles used to lose their far half."""
    result = fit_result(dev_model, [FACES / "002_03.jpg"])
    photo = load_photo(FACES / "002_03.jpg")
    frontal, seen = _frontal_texels_seen(dev_model, result.photos[0], photo.rgb.shape[:2], photo.scale)
    assert frontal > 1000 and seen > 0.97


def test_depth_test_keeps_oblique_surfaces_of_a_procedural_head(procedural_model):
    head = sample_head(procedural_model, np.random.default_rng(0), max_yaw_deg=5)
    frontal, seen = _frontal_texels_seen(procedural_model, exact_fit(procedural_model, head), (512, 512), 1.0)
    assert frontal > 1000 and seen > 0.97


def test_bake_recovers_a_known_albedo(procedural_model):
    """A head rendered with a known albedo and light: the bake removes the shading, puts the pattern back in
    UV, and fills the far side from its mirror."""
    fit = exact_fit(procedural_model, sample_head(procedural_model, np.random.default_rng(0)))
    rgb = render(procedural_model, fit)
    # The checkered procedural head is no face to the segmentation network (it would mask most of it): the bake's
    # own mechanics are tested here, the network in test_occluder_net.py.
    baker = TextureBaker(procedural_model, 256, learned_occluders=False)
    textures, lights = baker.bake([(rgb, 1.0, fit)])
    part = baker.photo_texture(rgb, 1.0, fit)
    rows, cols = np.mgrid[:256, :256]
    truth = checked_albedo(np.stack([(cols.ravel() + 0.5) / 256, 1 - (rows.ravel() + 0.5) / 256], 1)).reshape(
        256, 256, 3
    )

    def error(estimate: np.ndarray, where: np.ndarray) -> float:
        """Median relative error after a per-channel gain (one photo cannot tell albedo from light brightness)."""
        est, tru = estimate[where], truth[where]
        return float(np.median(np.abs(est * (est * tru).sum(0) / (est * est).sum(0) - tru) / tru))

    seen = part.weight > 0.5
    assert seen.sum() > 0.4 * baker.sampled.sum() and not textures.notes and lights[0].shape == (9, 3)
    assert error(part.albedo, seen) < 0.02 and error(part.colour, seen) > 0.08  # de-lit, not just projected
    mirrored = baker.sampled & (part.weight == 0) & (part.weight[:, ::-1] > 0.5)  # the far side, seen mirrored
    assert mirrored.sum() > 100 and error(textures.albedo, mirrored) < 0.02
    covered = baker.raster.covered
    assert np.isfinite(textures.albedo).all() and textures.albedo[covered].max(axis=1).min() > 0.05
    assert np.abs(textures.displacement).max() <= 0.0006 and np.abs(textures.displacement[~covered]).max() < 1e-9


def test_an_unlit_photo_gives_a_finite_albedo():
    """A skin the light fit finds unlit (black; or a light from behind) once divided by a zero median shading and
    turned the whole texture to NaN: it is now left un-de-lit, with a note."""
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(500, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    skin = np.ones(500, bool)
    sh, shading, notes = fit_skin_light(sh_basis(normals), np.zeros((500, 3)), skin, skin)
    assert np.isfinite(shading).all() and np.isfinite(sh).all() and notes and "unlit" in notes[0]


def test_teeth_inside_the_lips_are_found_and_closed_lips_are_not():
    """mouth_interior: white teeth and a dark inside within pink lips are not lips; closed pink lips leave nothing."""
    import cv2

    from facesmith.inference.texture.albedo import mouth_interior

    img = np.full((120, 160, 3), (200, 160, 140), np.uint8)  # skin
    cv2.ellipse(img, (80, 60), (50, 20), 0, 0, 360, (190, 90, 110), -1)  # lips
    closed = img.copy()
    cv2.rectangle(img, (50, 52), (110, 60), (240, 238, 230), -1)  # upper teeth
    cv2.rectangle(img, (50, 61), (110, 66), (40, 20, 20), -1)  # the dark inside
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    outer = np.c_[80 + 50 * np.cos(t), 60 + 20 * np.sin(t)]
    found = mouth_interior(img, outer) > 0
    assert found[52:67, 52:108].mean() > 0.95  # teeth and inside
    assert found[72:78, 60:100].sum() == 0  # the lower lip stays
    assert mouth_interior(closed, outer).sum() == 0


@pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
def test_detail_strength_scales_the_displacement(dev_model):
    import dataclasses

    options = dataclasses.replace(DEFAULTS, texture_size=256)
    path = FACES / "002_03.jpg"
    maps = {}
    for strength in (1.0, 0.5, 0.0):
        with Reconstructor(dataclasses.replace(options, detail_strength=strength), dev_model) as rec:
            result, photos = rec._fit([path], lambda *a: None, None)
            maps[strength] = rec.textures(result, photos)[0].displacement
    assert np.abs(maps[1.0]).max() > 0
    np.testing.assert_allclose(maps[0.5], 0.5 * maps[1.0], atol=1e-9)
    assert not maps[0.0].any()
