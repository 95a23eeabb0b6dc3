"""Face recognition: does dlib's recogniser take the rendered head for the person in the photo?

For each person of the CC BY studio set, the whole pipeline makes the head from the neutral portrait (NNN_03),
with colour constancy (texture/colour.py) and without it (the bake before, `--keep-photo-colour`) in the same
run. Blender renders each head as the preview renders it (addon/build_scene.py: its key light and grey world)
at the photo's camera and turned 30° about the head's vertical axis, composited on mid grey. dlib's ResNet face
recogniser (`face_recognition_models`, 128-d descriptors; dlib calls two faces the same person below a distance
of 0.6) compares:
  front      the render at the photo's camera  vs the photo it was made from;
  turned     the render turned 30°             vs the photo it was made from;
  other      the render turned 30°             vs the person's OTHER photo (NNN_08, smiling);
  impostor   the render turned 30°             vs another person's photo (the next person in the list): how
             often the recogniser says "same" for a wrong pair, so a high share above is not a lenient judge.
A face the detector does not find in a render counts as not recognised. Independent truth: the person's photos
and a recogniser trained on real faces; the render's light is the preview's.
Goal: the share recognised with colour constancy ≥ the share without, for front, turned and other (colour
constancy must not make a head less recognisable); the shares and the median distances are reported.

Usage: python bench/recognition.py [--faces N] [--size 384] [--samples 16] [--flame PATH] [--no-check]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED_FACES, Goal, add_check_argument, finish, load_bench_model, pipeline_options

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="facesmith-bench-"))
SAME_PERSON = 0.6  # dlib's threshold for its face recognition model (99.38 % on LFW at this distance)
TURN_DEGREES = 30.0
TEXTURE_SIZE = 512
GREY = 0.5  # the background renders are composited on (sRGB): a neutral studio backdrop
COMPARISONS = ("front", "turned", "other", "impostor")


class Recogniser:
    """dlib's face detector (HOG, then its CNN on a miss), 5-point aligner and ResNet descriptor."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as models

        self.dlib = dlib
        self.hog = dlib.get_frontal_face_detector()
        self.cnn = dlib.cnn_face_detection_model_v1(models.cnn_face_detector_model_location())
        self.aligner = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def descriptor(self, rgb: np.ndarray) -> np.ndarray | None:
        """(128,) descriptor of the largest face in an RGB uint8 image; None when no face is found."""
        boxes = list(self.hog(rgb, 1)) or [d.rect for d in self.cnn(rgb, 1)]
        if not boxes:
            return None
        box = max(boxes, key=lambda b: b.width() * b.height())
        shape = self.aligner(rgb, box)
        return np.asarray(self.encoder.compute_face_descriptor(rgb, shape, 1))


def distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Descriptor distance; infinite when either face was not found (never "the same person")."""
    return float("inf") if a is None or b is None else float(np.linalg.norm(a - b))


def on_grey(rgba: np.ndarray) -> np.ndarray:
    """An RGBA uint8 render composited on GREY: RGB uint8."""
    alpha = rgba[..., 3:4] / 255.0
    return np.round(rgba[..., :3] * alpha + 255 * GREY * (1 - alpha)).astype(np.uint8)


def render_views(head, side: int, samples: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The head at the photo's camera and turned TURN_DEGREES, as the preview renders them (RGB uint8)."""
    import bpy
    from PIL import Image

    from facesmith.addon.build_scene import configure_cpu_render, render_png, turned_view
    from facesmith.addon.head import build_head
    from facesmith.addon.output import reset_file

    reset_file()
    built = build_head(head.rig, head.textures)
    configure_cpu_render(bpy.context.scene)
    front = np.asarray(Image.open(render_png(folder / "front.png", max_side=side, samples=samples)).convert("RGBA"))
    with turned_view(built.camera, built.mesh, built.armature, TURN_DEGREES):
        turned = np.asarray(
            Image.open(render_png(folder / "turned.png", max_side=side, samples=samples)).convert("RGBA")
        )
    return on_grey(front), on_grey(turned)


def pick(paths: list[Path], n: int) -> list[Path]:
    """n paths spread evenly over the list (all when n is 0), not its start."""
    if not n:
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=24, help="people, spread evenly over the list (0: all 102)")
    parser.add_argument("--size", type=int, default=384, help="render's long side in px (default 384)")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--flame", default=None)
    add_check_argument(parser)
    args = parser.parse_args()
    from PIL import Image

    from facesmith.inference.pipeline import Reconstructor

    model = load_bench_model(args.flame)
    people = sorted(p for p in SHARED_FACES.glob("*_03.jpg") if p.with_name(p.name.replace("_03", "_08")).exists())
    chosen = pick(people, args.faces)
    recogniser = Recogniser()
    photo = {p: recogniser.descriptor(np.asarray(Image.open(p).convert("RGB"))) for p in chosen}
    other = {
        p: recogniser.descriptor(np.asarray(Image.open(str(p).replace("_03", "_08")).convert("RGB"))) for p in chosen
    }
    modes = {"on": True, "off": False}
    recs = {m: Reconstructor(pipeline_options(args.flame, texture_size=TEXTURE_SIZE, colour_constancy=c), model)
            for m, c in modes.items()}  # fmt: skip
    dist = {m: {c: [] for c in COMPARISONS} for m in modes}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facesmith-recognition-") as tmp:
        for i, path in enumerate(chosen):
            impostor = photo[chosen[(i + 1) % len(chosen)]]
            row = f"{path.stem}:"
            for m, rec in recs.items():
                front, turned = (
                    recogniser.descriptor(v) for v in render_views(rec.run([path]), args.size, args.samples, Path(tmp))
                )
                found = {"front": (front, photo[path]), "turned": (turned, photo[path]), "other": (turned, other[path]),
                         "impostor": (turned, impostor)}  # fmt: skip
                for c, (a, b) in found.items():
                    dist[m][c].append(distance(a, b))
                row += f"  {m} " + " ".join(f"{c} {dist[m][c][-1]:.3f}" for c in COMPARISONS)
            print(row, flush=True)
    print(f"{len(chosen)} people in {time.perf_counter() - t0:.0f} s")
    share = {
        m: {c: round(float(np.mean(np.array(d[c]) < SAME_PERSON)), 3) for c in COMPARISONS} for m, d in dist.items()
    }
    median = {m: {c: round(float(np.median(d[c])), 3) for c in COMPARISONS} for m, d in dist.items()}
    kind = "independent truth: the person's photos, dlib's recogniser; render with the preview's light"
    goals = [
        Goal(f"recognised_share_{c}", share["on"][c], ">=", share["off"][c], share["off"][c], "without colour constancy", kind)
        for c in COMPARISONS[:3]
    ]  # fmt: skip
    finish({"people": len(chosen), "share_same_person": share, "median_distance": median}, goals, not args.no_check)


if __name__ == "__main__":
    main()
