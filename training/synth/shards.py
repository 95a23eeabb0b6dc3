"""Write N synthetic images as .npz shards with a manifest and a 50-image grid, on a small process pool.

Image i of seed S is generated from default_rng([S, i]) alone, so it is the same for any shard size or
worker count. Shard k holds images [k·shard_size, (k+1)·shard_size). Shards are zlib-compressed (about half
the bytes; np.load reads either kind), written atomically, and a stopped run started again with the same
arguments keeps the shards it finds complete and makes only the rest."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .engine import CAMERA_KINDS, SEGMENTS, Assets, Engine

_ENGINE: Engine | None = None  # the worker's engine (inherited through fork, or built by _init)
LABEL_DOC = {
    "images": "(n, S, S, 3) uint8 sRGB",
    "segment": f"(n, S, S) uint8: {', '.join(f'{i} {s}' for i, s in enumerate(SEGMENTS))}",
    "vertices_px": "(n, V, 2) float32: every FLAME vertex projected to pixels (x right, y down; pixel centres at integers)",
    "visible": "(n, V) bool: in frame, facing the camera and not hidden by the mesh (z-buffer, 4 mm tolerance)",
    "occluded": "(n, V) bool: visible but covered by an occluder (hand, glasses frame, sunglasses, strand, cut-out)",
    "shape": "(n, n_shape) float32 β",
    "expression": "(n, n_expr) float32 ψ",
    "pose": "(n, 5, 3) float32 axis-angle: global, neck, jaw, eye_L, eye_R",
    "eyelids": "(n, 2) float32 eyelid blendshape weights (0 when the model has none)",
    "euler_deg": "(n, 3) float32 yaw, pitch, roll of the global pose, R = Ry·Rx·Rz",
    "camera_kind": f"(n,) int8: {', '.join(f'{i} {k}' for i, k in enumerate(CAMERA_KINDS))}",
    "camera": "(n, 6) float32: orthographic (s px/m, tx px, ty px, 0, 0, 0); perspective (tx, ty, tz m, focal px, cx, cy px) as facesmith.inference.camera.Camera",
    "albedo_index": "(n,) int16 albedo bank entry (-1: flat procedural skin)",
    "fitted_expression": "(n,) int16 fitted-ψ bank entry the expression started from (-1: random)",
    "person_index": "(n,) int16 people cut-out behind the head (-1: procedural hair mass / shoulders or none)",
    "index": "(n,) int64 image index within the seed",
    "seed": "() int64 the seed (a resumed run keeps shards of its own seed only)",
    "size": "() int64 the image side in pixels",
}


def _init(engine: Engine) -> None:
    """One thread per worker process: the pool is the parallelism."""
    global _ENGINE
    _ENGINE = engine
    import signal

    import cv2

    # The parent handles Ctrl-C and stopping; a worker must not inherit the CLI's handlers (which raise).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def shard_path(out: Path, k: int) -> Path:
    return out / f"shard_{k:05d}.npz"


def write_shard(engine: Engine, seed: int, out: Path, k: int, start: int, count: int) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    images, segs, labels = [], [], {}
    for i in range(start, start + count):
        img, seg, lab = engine.make(seed, i)
        images.append(img)
        segs.append(seg)
        for key, value in lab.items():
            labels.setdefault(key, []).append(value)
    arrays = {key: np.stack(v) for key, v in labels.items()}
    path = shard_path(out, k)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, images=np.stack(images), segment=np.stack(segs), index=np.arange(start, start + count),
                        seed=np.int64(seed), size=np.int64(engine.size), **arrays)  # fmt: skip
    os.replace(tmp, path)
    return k, count, time.perf_counter() - t0


def shard_done(path: Path, seed: int, size: int, start: int, count: int) -> bool:
    """A shard left by an earlier run of the same job: readable, of this seed and image size, and holding
    images [start, start + count)."""
    try:
        with np.load(path) as z:
            index, got_seed, got_size = z["index"], int(z["seed"]), int(z["size"])
    except Exception:  # missing, truncated, not an .npz or without its seed: make it again
        return False
    return (got_seed, got_size, len(index)) == (seed, size, count) and int(index[0]) == start


def _work(job: tuple[int, Path, int, int, int]) -> tuple[int, int, float]:
    seed, out, k, start, count = job
    assert _ENGINE is not None
    return write_shard(_ENGINE, seed, out, k, start, count)


def generate(
    engine: Engine, n: int, seed: int, out: Path, workers: int = 2, shard_size: int = 250,
    sources: dict | None = None, log=print,
) -> dict:  # fmt: skip
    """Write the shards, manifest.json, grid.png and grid_landmarks.png; return the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_jobs = [(seed, out, k, s, min(shard_size, n - s)) for k, s in enumerate(range(0, n, shard_size))]
    # Resume: a shard of this seed already there is kept (image i depends on (seed, i) only).
    jobs = [j for j in all_jobs if not shard_done(shard_path(out, j[2]), seed, engine.size, j[3], j[4])]
    if len(jobs) < len(all_jobs):
        log(f"resuming: {len(all_jobs) - len(jobs)} of {len(all_jobs)} shards already there")
    t0 = time.perf_counter()
    done = 0
    if workers <= 1 or len(jobs) <= 1:
        results = (write_shard(engine, *job) for job in jobs)
        for _k, count, _dt in results:
            done += count
            log(f"{done}/{sum(j[4] for j in jobs)} images, {done / (time.perf_counter() - t0):.2f} images/s")
    else:
        import multiprocessing as mp

        # spawn, not fork: a parent that has run OpenCV's or MediaPipe's threads (building the caches) can leave
        # their locks held in a forked child, which then hangs. The engine is pickled to each worker once.
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init, initargs=(engine,)) as pool:
            for _k, count, _dt in pool.imap_unordered(_work, jobs):
                done += count
                log(f"{done}/{sum(j[4] for j in jobs)} images, {done / (time.perf_counter() - t0):.2f} images/s")
            pool.close()
            pool.join()
    seconds = time.perf_counter() - t0
    m = engine.model
    manifest = {
        "generator": "facesmith.training.synth",
        "seed": seed,
        "count": n,
        "image_size": engine.size,
        "shard_size": shard_size,
        "shards": [shard_path(out, k).name for k in range(len(all_jobs))],
        "determinism": "image i of seed S is drawn from numpy default_rng([S, i]) only",
        "model": {
            "description": m.description,
            "source": str(m.source),
            "n_vertices": m.n_vertices,
            "n_shape": m.n_shape,
            "n_expr": m.n_expr,
            "development": bool(m.is_development),
        },
        "labels": LABEL_DOC,
        "sources": sources or {},
        "non_commercial_sources_used": bool((sources or {}).get("non_commercial_sources_used", False)),
        "workers": workers,
        "seconds": round(seconds, 2),
        "images_per_second": round(done / max(seconds, 1e-9), 3),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    write_grids(out, manifest)
    return manifest


GRID_KEYS = ("images", "vertices_px", "visible", "occluded", "segment")


def read_first(out: Path, manifest: dict, count: int = 50, keys: tuple[str, ...] = GRID_KEYS) -> dict:
    """The first `count` images and the labels named in `keys`, read back from the shards."""
    parts: dict[str, list] = {}
    got = 0
    for name in manifest["shards"]:
        with np.load(out / name) as z:
            take = min(count - got, len(z["images"]))
            for key in keys:
                parts.setdefault(key, []).append(z[key][:take])
        got += take
        if got >= count:
            break
    return {k: np.concatenate(v) for k, v in parts.items()}


def write_grids(out: Path, manifest: dict, count: int = 50, cols: int = 10) -> None:
    """grid.png: the first images; grid_landmarks.png: the same with visible vertices green, occluded ones
    red and hidden ones (a sparse subset) blue."""
    import cv2

    data = read_first(out, manifest, count)
    images = data["images"]
    n, s = len(images), images.shape[1]
    rows = (n + cols - 1) // cols
    grid = np.zeros((rows * s, cols * s, 3), np.uint8)
    marked = grid.copy()
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * s : (r + 1) * s, c * s : (c + 1) * s] = images[i]
        img = images[i].copy()
        xy, vis, occ = data["vertices_px"][i], data["visible"][i], data["occluded"][i]
        ij = np.round(xy).astype(int)
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < s) & (ij[:, 1] >= 0) & (ij[:, 1] < s)
        hidden = ok & ~vis
        hidden[np.arange(len(hidden)) % 7 != 0] = False
        img[ij[hidden, 1], ij[hidden, 0]] = (40, 80, 255)
        sel = ok & vis & ~occ
        img[ij[sel, 1], ij[sel, 0]] = (0, 255, 0)
        sel = ok & occ
        img[ij[sel, 1], ij[sel, 0]] = (255, 0, 0)
        marked[r * s : (r + 1) * s, c * s : (c + 1) * s] = img
    cv2.imwrite(str(out / "grid.png"), grid[..., ::-1])
    cv2.imwrite(str(out / "grid_landmarks.png"), marked[..., ::-1])


def build_engine(model, size: int = 256, noncommercial: bool = False, log=print) -> tuple[Engine, dict]:
    """The engine with the cached albedo bank (built on first use from the CC BY portraits when they are
    there), the backgrounds, and — only when `noncommercial` — UTKFace cut-outs. Returns the sources."""
    from .assets import CUTOUT_SOURCE, load_backgrounds, load_cutouts
    from .bank import BANK_PATH, BANK_SOURCE, FACES_DIR, PEOPLE_PATH, build_bank, build_people, load_bank, load_people

    bank = load_bank()
    if bank is None and FACES_DIR.is_dir():
        log(f"building the albedo bank from {FACES_DIR} (once; cached in {BANK_PATH})")
        build_bank(log=log)
        bank = load_bank()
    people = load_people()
    if people is None and FACES_DIR.is_dir():
        log(f"cutting out the people of {FACES_DIR} (once; cached in {PEOPLE_PATH})")
        build_people(log=lambda s: None)
        people = load_people()
    backgrounds, bg_sources = load_backgrounds()
    cutouts = load_cutouts() if noncommercial else ()
    assets = Assets(
        albedos=None if bank is None else bank["albedo"], expressions=None if bank is None else bank["expression"],
        backgrounds=backgrounds, cutouts=cutouts, people=people,
    )  # fmt: skip
    sources = {
        "albedo_and_fitted_expressions": (
            {**BANK_SOURCE, "people": [str(p) for p in bank["people"]]}
            if bank is not None
            else "none: flat procedural skin, random expressions only"
        ),
        "people_cutouts": (
            {
                **BANK_SOURCE,
                "use": "hair, ears, neck, shoulders and clothes around near-frontal rendered heads "
                "(GrabCut seeded by the fitted FLAME head; the fitted face made transparent)",
                "photos": [str(p) for p in people["photos"]],
            }
            if people is not None
            else "none: procedural hair mass and shoulders only"
        ),
        "backgrounds": bg_sources or ["procedural gradients only"],
        "procedural": "hair cap, hair mass, shoulders, strands, hands, glasses: drawn procedurally (no source)",
        "cutouts": {**CUTOUT_SOURCE, "count": len(cutouts)} if noncommercial else "none",
        "non_commercial_sources_used": bool(noncommercial and cutouts),
    }
    return Engine(model, assets, size), sources
