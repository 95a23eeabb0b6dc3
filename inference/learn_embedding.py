"""Learn the dense MediaPipe embedding from a folder of portraits (see mp_embedding).

python -m facesmith.inference.learn_embedding --photos ../shared/data/faces -o assets/mediapipe_dense_embedding.npz
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from .detect import LandmarkDetector
from .errors import FacesmithError
from .fit import FitOptions, Observation, fit_flame, mediapipe_embedding
from .flame import flame_forward
from .images import load_photo
from .model_paths import default_dev_model_path, load_model, resolve_flame_path
from .mp_embedding import Embedding, HitCollector, save_embedding

log = logging.getLogger(__name__)
IRIS = range(468, 478)


def learn(model, observations: list[Observation], passes: int = 2) -> Embedding:
    """Each pass fits every photo with the embedding so far, then re-learns it from the hits."""
    extra = None
    options = FitOptions(fit_gaze=False)
    for p in range(passes):
        collector = HitCollector(model)
        for obs in observations:
            sol = fit_flame(model, [obs], options, embedding=extra)
            st = sol.photos[0]
            verts = flame_forward(model, sol.shape, st.expression, st.pose()).vertices[0]
            view = np.array([0.0, 0.0, 1.0])  # orthographic camera looks down -z
            collector.add(verts, st.camera.project, view, obs.points)
        extra = collector.embedding(exclude=IRIS)
        log.warning("pass %d: %d MediaPipe points embedded", p + 1, len(mediapipe_embedding(model, extra).indices))
    return extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--flame")
    args = parser.parse_args()
    model = load_model(resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path()))
    observations = []
    with LandmarkDetector("mediapipe", fallback=None) as detector:
        for path in sorted(args.photos.glob("*.jpg")):
            try:
                photo = load_photo(path)
                face = detector.detect(photo).face
            except FacesmithError as exc:
                log.warning("skipped %s", exc)
                continue
            observations.append(Observation.from_face(face, photo.to_original, photo.original_size))
    emb = learn(model, observations, args.passes)
    note = (
        f"learned from {len(observations)} photos in {args.photos.name}/, {args.passes} passes, on {model.description}"
    )
    save_embedding(emb, args.output, note)
    print(f"wrote {args.output}: {len(emb.indices)} points; {note}")


if __name__ == "__main__":
    main()
