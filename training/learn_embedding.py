"""Learn where MediaPipe's mesh points lie on FLAME (the table in assets/mediapipe_dense_embedding.npz).

Two methods, both casting each detected MediaPipe point along the view ray onto a FLAME mesh and taking
the median of the hits on the mean template (see inference/landmarks/embedding.py):

- `photos` (shipped): real portraits, each fitted first; two passes, the second fitting with the first
  table. Aligns well with real photos, but inherits the shape bias of the fits it learns from.
- `renders`: random heads of known geometry rendered in Blender (skin from real portraits), points cast
  onto the *true* mesh. Less biased on renders (bench/synthetic_e2e.py), but chins land ~15 % of the face
  size low on real photos: the renders are not yet realistic enough. Kept for that work.

    python -m facesmith.training.learn_embedding photos --photos ../shared/data/faces -o assets/mediapipe_dense_embedding.npz
    python -m facesmith.training.learn_embedding renders --sources ../shared/data/faces --n 100 -o OUT.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from ..inference import flame
from ..inference.errors import FacesmithError
from ..inference.fit import FitOptions, Observation, fit_flame, mediapipe_embedding
from ..inference.flame.model import FlameModel
from ..inference.images import load_photo
from ..inference.landmarks.detect import LandmarkDetector
from ..inference.landmarks.embedding import Embedding, HitCollector, save_embedding
from ..inference.options import DEFAULTS
from ..inference.pipeline import Reconstructor, load_pipeline_model

log = logging.getLogger(__name__)
IRIS = range(468, 478)
VIEW = np.array([0.0, 0.0, 1.0])  # the orthographic camera looks down FLAME's −z


def detect(detector: LandmarkDetector, path: Path) -> Observation | None:
    try:
        photo = load_photo(path)
        face = detector.detect(photo).face
    except FacesmithError as exc:
        log.warning("skipped %s", exc)
        return None
    return Observation.from_face(face, photo.to_original, photo.original_size)


def learn_from_photos(model: FlameModel, observations: list[Observation], passes: int = 2) -> Embedding:
    """Each pass fits every photo with the table so far, then re-learns the table from the hits."""
    learned = None
    options = FitOptions(fit_gaze=False)
    for p in range(passes):
        collector = HitCollector(model)
        for obs in observations:
            sol = fit_flame(model, [obs], options, embedding=learned)
            st = sol.photos[0]
            verts = flame.flame_forward(model, sol.shape, st.expression, st.pose()).vertices[0]
            collector.add(verts, st.camera.project, VIEW, obs.points)
        learned = collector.embedding(exclude=IRIS)
        log.warning("pass %d: %d MediaPipe points", p + 1, len(mediapipe_embedding(model, learned).indices))
    return learned


def learn_from_renders(
    model: FlameModel, sources: list[Path], n: int, seed: int, samples: int
) -> tuple[Embedding, int]:
    """Random heads rendered with skin from `sources`; hits on the true meshes. Returns the table and renders used."""
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-learn-"))
    from .render import render_head  # bpy only here
    from .synthetic import sample_head, vertex_colours

    rng = np.random.default_rng(seed)
    collector = HitCollector(model)
    used = 0
    options = dataclasses.replace(DEFAULTS, landmarks="mediapipe", fallback=False)
    with Reconstructor(options, model) as rec, tempfile.TemporaryDirectory() as tmp:
        detector = rec.detector
        skins = []
        for src in sources:  # the pipeline's own fit of each portrait, only to colour the skin
            photo = load_photo(src, options.working_side)
            fitted = rec.fit([src])
            skins.append(vertex_colours(photo.rgb, fitted.photos[0], photo.scale, model.faces))
        for i in range(n):
            head = sample_head(model, rng, max_yaw_deg=30.0)
            head["expression"] *= 0.7
            verts = flame.flame_forward(model, head["shape"], head["expression"], head["pose"]).vertices[0]
            light = np.radians([rng.uniform(-40, 20), rng.uniform(-40, 40), 0.0])
            path = Path(tmp) / "render.png"
            render_head(
                verts, model.faces, skins[i % len(skins)], head["camera"], light, rng.uniform(0.2, 0.6), path, samples
            )
            obs = detect(detector, path)
            if obs is not None:
                collector.add(verts, head["camera"].project, VIEW, obs.points)
                used += 1
    return collector.embedding(exclude=IRIS), used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="method", required=True)
    photos = sub.add_parser("photos", help="from fits of real portraits (shipped)")
    photos.add_argument("--photos", type=Path, required=True)
    photos.add_argument("--passes", type=int, default=2)
    renders = sub.add_parser("renders", help="from renders of heads with known geometry")
    renders.add_argument("--sources", type=Path, required=True, help="portraits that colour the synthetic skin")
    renders.add_argument("--n", type=int, default=100)
    renders.add_argument("--seed", type=int, default=1000, help="apart from the benchmarks' seeds")
    renders.add_argument("--samples", type=int, default=16)
    for p in (photos, renders):
        p.add_argument("-o", "--output", type=Path, required=True)
        p.add_argument("--flame")
    args = parser.parse_args()
    model = load_pipeline_model(dataclasses.replace(DEFAULTS, flame_path=args.flame or ""))
    if args.method == "photos":
        with LandmarkDetector("mediapipe", fallback=None) as detector:
            observations = [o for p in sorted(args.photos.glob("*.jpg")) if (o := detect(detector, p)) is not None]
        emb = learn_from_photos(model, observations, args.passes)
        note = (
            f"photos: {len(observations)} portraits in {args.photos.name}/, {args.passes} passes, {model.description}"
        )
    else:
        # Skin from every 8th neutral portrait; the benchmarks' 001_03 is left out.
        sources = [p for p in sorted(args.sources.glob("*_03.jpg")) if p.name != "001_03.jpg"][::8]
        emb, used = learn_from_renders(model, sources, args.n, args.seed, args.samples)
        note = (
            f"renders: {used} random {model.description} heads (seed {args.seed}), skin from {len(sources)} portraits"
        )
    save_embedding(emb, args.output, note)
    print(f"wrote {args.output}: {len(emb.indices)} MediaPipe points; {note}")


if __name__ == "__main__":
    main()
