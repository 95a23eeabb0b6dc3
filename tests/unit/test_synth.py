"""The synthetic data engine (training/synth): deterministic by seed whatever the sharding, labels that agree
with the image and with FLAME + the camera, and the shard / manifest / grid format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesmith.inference.camera import Camera
from facesmith.inference.flame import flame_forward
from facesmith.inference.landmarks.dense import ibug_vertices
from facesmith.training.synth.engine import SEGMENTS, Assets, Engine
from facesmith.training.synth.raster import rasterize
from facesmith.training.synth.shards import LABEL_DOC, generate

SIZE = 64


@pytest.fixture(scope="module")
def engine(procedural_model) -> Engine:
    rng = np.random.default_rng(0)
    background = (rng.random((80, 120, 3)) * 255).astype(np.uint8)
    albedo = np.full((1, 32, 32, 3), (200, 160, 140), np.uint8)
    expressions = rng.normal(size=(2, procedural_model.n_expr)).astype(np.float32)
    rgba = np.zeros((1, 32, 32, 4), np.uint8)
    rgba[0, 4:30, 6:26] = (90, 60, 40, 255)  # a "person" around the face
    people = {"rgba": rgba, "eyes": np.array([[[12.0, 14.0], [20.0, 14.0]]]), "hair": np.array([[0.2, 0.1, 0.05]])}
    return Engine(procedural_model, Assets(albedo, expressions, (background,), people=people), SIZE)


def test_rasterize_covers_a_triangle_with_the_nearest_surface() -> None:
    xy = np.array([[2, 2], [20, 2], [2, 20], [2, 2], [20, 2], [2, 20]], float)
    near = np.array([0, 0, 0, 1, 1, 1], float)
    ras = rasterize(xy, near, np.array([[0, 1, 2], [3, 4, 5]]), 24, 24)
    assert ras.triangle[5, 5] == 1 and ras.triangle[0, 0] == -1 and ras.triangle[15, 15] == -1
    assert np.allclose(ras.bary[5, 5].sum(), 1.0)
    assert ras.depth[5, 5] == pytest.approx(1.0)


def test_synth_image_is_deterministic_by_seed_and_index(engine: Engine) -> None:
    a, sa, la = engine.make(7, 3)
    b, sb, lb = engine.make(7, 3)
    c, _, _ = engine.make(8, 3)
    assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(sa, sb)
    assert all(np.array_equal(la[k], lb[k]) for k in la)
    assert not np.array_equal(a, c)


def test_synth_labels_agree_with_flame_the_camera_and_the_image(engine: Engine, procedural_model) -> None:
    seen = 0
    for i in range(6):
        _, seg, lab = engine.make(1, i)
        out = flame_forward(procedural_model, lab["shape"], lab["expression"], lab["pose"], lab["eyelids"][None])
        c = lab["camera"].astype(np.float64)
        if lab["camera_kind"] == 0:
            cam = Camera("orthographic", c[:3])
        else:
            cam = Camera("perspective", c[:3], float(c[3]), (float(c[4]), float(c[5])))
        assert np.allclose(cam.project(out.vertices[0]), lab["vertices_px"], atol=0.05)
        vis = lab["visible"]
        seen += vis.sum()
        ij = np.round(lab["vertices_px"][vis]).astype(int)
        assert (seg[ij[:, 1], ij[:, 0]] > 0).all()  # visible vertices land on the rendered head
        assert not (lab["occluded"] & ~vis).any()
    assert seen > 0


def test_synth_pastes_people_only_around_near_frontal_heads(engine: Engine) -> None:
    labels = [engine.make(2, i)[2] for i in range(30)]
    pasted = [lab for lab in labels if lab["person_index"] >= 0]
    assert pasted, "no image used the people cut-outs"
    assert all(abs(lab["euler_deg"][0]) < 20 and abs(lab["euler_deg"][1]) < 20 for lab in pasted)


def test_synth_shards_manifest_and_grid(engine: Engine, tmp_path) -> None:
    one = tmp_path / "one"
    manifest = generate(engine, 5, seed=3, out=one, workers=1, shard_size=2, log=lambda s: None)
    assert manifest["shards"] == ["shard_00000.npz", "shard_00001.npz", "shard_00002.npz"]
    on_disk = json.loads((one / "manifest.json").read_text())
    assert on_disk["seed"] == 3 and on_disk["count"] == 5 and on_disk["non_commercial_sources_used"] is False
    assert (one / "grid.png").is_file() and (one / "grid_landmarks.png").is_file()
    v = engine.model.n_vertices
    with np.load(one / "shard_00002.npz") as z:
        assert set(LABEL_DOC) <= set(z.files)
        assert z["images"].shape == (1, SIZE, SIZE, 3) and z["vertices_px"].shape == (1, v, 2)
        assert z["visible"].dtype == bool and z["pose"].shape == (1, 5, 3) and list(z["index"]) == [4]
    # The same images from another sharding on two worker processes.
    two = tmp_path / "two"
    generate(engine, 5, seed=3, out=two, workers=2, shard_size=3, log=lambda s: None)
    for key in ("images", "vertices_px", "visible", "shape", "camera"):
        assert np.array_equal(_all(one, key), _all(two, key))


def _all(folder, key: str) -> np.ndarray:
    names = json.loads((folder / "manifest.json").read_text())["shards"]
    parts = []
    for name in names:
        with np.load(folder / name) as z:
            parts.append(z[key])
    return np.concatenate(parts)


def test_cli_has_the_synth_command() -> None:
    from facesmith.cli.main import build_parser

    args = build_parser().parse_args(["synth", "--n", "4", "--seed", "2", "--out", "x"])
    assert args.n == 4 and args.seed == 2 and args.workers == 2 and not args.noncommercial_cutouts


def test_synth_mouth_parts_follow_the_jaw(dev_model) -> None:
    from facesmith.inference.flame import flame_forward as forward
    from facesmith.training.synth.mouth import load_mouth_mesh, posed_mouth

    procedural_model = dev_model  # the parts are made for FLAME's mesh
    mesh = load_mouth_mesh(procedural_model)
    assert mesh is not None and mesh.tooth.any() and (~mesh.tooth).any()
    shape = np.zeros(procedural_model.n_shape)
    rest = posed_mouth(mesh, procedural_model, shape, forward(procedural_model, shape).transforms[0])
    assert np.allclose(rest, mesh.vertices, atol=1e-9)  # the mean head, unposed: the asset as shipped
    pose = np.zeros((5, 3))
    pose[2, 0] = 0.3  # the jaw open
    opened = posed_mouth(mesh, procedural_model, shape, forward(procedural_model, shape, pose=pose).transforms[0])
    moved = np.linalg.norm(opened - rest, axis=1)
    lower, upper = mesh.jaw_weight > 0.99, mesh.jaw_weight < 0.01
    assert moved[upper].max() < 1e-5 and np.median(moved[lower]) > 0.005  # lower teeth and tongue drop with the jaw


def test_synth_open_mouth_shows_teeth(dev_model, monkeypatch) -> None:
    """A frontal head with the jaw open: teeth-coloured pixels inside the mouth (the segment the inside
    is labelled as); with the parts taken away, none."""
    albedo = np.full((1, 32, 32, 3), (200, 160, 140), np.uint8)
    engine = Engine(dev_model, Assets(albedo, None, (np.full((8, 8, 3), 90, np.uint8),)), 160)
    sample = engine.sample

    def open_frontal(rng):
        p = sample(rng)
        p["pose"][:] = 0
        p["pose"][2, 0] = 0.3
        p["euler_deg"][:] = 0
        return p

    monkeypatch.setattr(engine, "sample", open_frontal)

    lips = ibug_vertices(dev_model)[48:60]

    def teeth_pixels() -> int:
        count = 0
        for i in range(4):
            img, seg, labels = engine.make(5, i)
            (x0, y0), (x1, y1) = (
                np.floor(labels["vertices_px"][lips].min(0)),
                np.ceil(labels["vertices_px"][lips].max(0)),
            )
            y, x = np.mgrid[: img.shape[0], : img.shape[1]]
            inside = img[(seg == SEGMENTS.index("mouth_interior")) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
            # Teeth are about as green as red; the inside (0.25, 0.08, 0.07 sRGB) and the gums are far redder.
            inside = inside.astype(float)
            count += int(((inside[:, 0] > 40) & (inside[:, 1] > 0.75 * inside[:, 0])).sum())
        return count

    with_parts = teeth_pixels()
    monkeypatch.setattr(engine, "mouth", None)
    without = teeth_pixels()
    assert with_parts > 30 and with_parts > 10 * without


def test_synth_glasses_frame_is_an_occluder_and_the_lens_is_not():
    """draw_glasses on a sphere head seen face-on (orthographic): every pair's frame is labelled an occluder in a
    ring around each eye, and the eye itself, seen through a clear lens, mostly is not (sunglasses, a glare or the
    frame's shadow can cover it)."""
    from facesmith.training.synth.glasses import draw_glasses

    n, s, radius = 128, 400.0, 0.1  # pixels, pixels per metre, metres

    def project(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([n / 2 + s * p[:, 0], n / 2 - s * p[:, 1]], 1), p[:, 2]

    ys, xs = np.mgrid[0:n, 0:n]
    r2 = ((xs - n / 2) / s) ** 2 + ((n / 2 - ys) / s) ** 2
    depth = np.where(r2 < radius**2, np.sqrt(np.maximum(radius**2 - r2, 0)), -np.inf).astype(np.float32)
    eyes = np.array([[-0.032, 0.0, 0.09], [0.032, 0.0, 0.09]])
    eye_px = project(eyes)[0]
    width_px = np.linalg.norm(eye_px[1] - eye_px[0])
    clear = 0
    for seed in range(20):
        img = np.full((n, n, 3), 0.6, np.float32)
        occ = np.zeros((n, n), np.float32)
        draw_glasses(img, occ, np.random.default_rng(seed), eyes, np.eye(3), project, depth, np.isfinite(depth))
        for centre in eye_px:
            d = np.hypot(xs - centre[0], ys - centre[1])
            ring = (d > 0.15 * width_px) & (d < 0.7 * width_px)
            assert (occ[ring] > 0.5).sum() > 10, seed
        clear += all(occ[int(round(c[1])), int(round(c[0]))] < 0.5 for c in eye_px)
        assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1.0 + 1e-5
    assert clear >= 10


def test_synth_glasses_temple_is_hidden_behind_the_head():
    """visible_runs keeps the part of a temple in front of the head's z-buffer (or off the head) and drops the rest."""
    from facesmith.training.synth.glasses import visible_runs

    depth = np.full((32, 32), -np.inf, np.float32)
    depth[:, 10:20] = 1.0  # the head covers columns 10-19 at nearness 1
    xy = np.stack([np.arange(2, 30, dtype=float), np.full(28, 16.0)], 1)
    near = np.where(xy[:, 0] < 15, 2.0, 0.0)  # in front of the head up to column 14, behind it after
    runs = visible_runs(xy, near, depth)
    kept = np.concatenate(runs)[:, 0]
    assert set(kept) == set(range(2, 15)) | set(range(20, 30))  # behind the head: columns 15-19 dropped
