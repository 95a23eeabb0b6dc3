"""Headless conversion: photos -> rigged heads (.blend/.glb/.fbx + .json + preview PNG).

Runs on the `bpy` module (`facesmith reconstruct|batch ...`, `python -m facesmith.addon.batch ...`)
and inside a Blender binary, with the add-on installed as an extension:

    blender -b --python-expr "from bl_ext.user_default.facesmith.addon import batch; batch.main()" -- batch IN OUT
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from PIL import Image

from ..inference.albedo import TextureBaker
from ..inference.detect import LandmarkDetector
from ..inference.errors import FacesmithError
from ..inference.files import atomic_write
from ..inference.flame_model import FlameModel
from ..inference.mp_embedding import Embedding
from ..inference.pipeline import PipelineOptions, fit_photos
from ..inference.preview import compose_preview
from ..inference.rig_data import rig_data
from ..inference.session import make_textures
from .build_scene import render_png, turned_view
from .head import EXPORT_FORMATS, build_head, export_scene

log = logging.getLogger("facesmith")
PREVIEW_TURN_DEGREES = 45.0  # the second preview view: the cheek and the texture's filled side
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass(frozen=True)
class ConvertOptions:
    formats: tuple[str, ...] = EXPORT_FORMATS
    preview: bool = True
    overwrite: bool = False
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    textures: bool = True  # False: a flat skin colour from the photo
    texture_size: int = 1024


@dataclass
class Resources:
    """What is worth creating once per run: landmark detector, learned embedding, UV raster."""

    detector: LandmarkDetector | None = None
    embedding: Embedding | None = None
    baker: TextureBaker | None = None

    def baker_for(self, model: FlameModel, size: int) -> TextureBaker:
        if self.baker is None or self.baker.size != size or self.baker.model is not model:
            self.baker = TextureBaker(model, size)
        return self.baker


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "ok", "skipped" or "failed"
    message: str = ""
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0


def output_paths(outdir: Path, name: str, options: ConvertOptions) -> list[Path]:
    paths = [outdir / f"{name}.{fmt}" for fmt in options.formats] + [outdir / f"{name}.json"]
    return paths + ([outdir / f"{name}_preview.png"] if options.preview else [])


def reset_file() -> None:
    """An empty Blender file for each head, so heads never share data."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups beside the outputs


def convert(
    photos: Sequence[Path], outdir: Path, name: str, model: FlameModel, options: ConvertOptions,
    resources: Resources | None = None,
) -> Outcome:  # fmt: skip
    """One head from `photos` (one person). All outputs appear together or not at all."""
    start = time.perf_counter()
    targets = output_paths(outdir, name, options)
    existing = [p.name for p in targets if p.exists()]
    if existing and not options.overwrite:
        return Outcome(name, "skipped", f"exists: {', '.join(existing)} (use --overwrite)")
    timings: dict[str, float] = {}
    resources = resources or Resources()
    result = fit_photos(photos, model, options.pipeline, detector=resources.detector, embedding=resources.embedding)
    timings.update(result.timings_ms)
    t0 = time.perf_counter()
    baker = resources.baker_for(model, options.texture_size) if options.textures else None
    textures, photo, lights = make_textures(model, result, baker)
    timings["textures"] = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    rig = rig_data(model, result, 0, name)
    reset_file()
    head = build_head(rig, textures)
    timings["build"] = 1000 * (time.perf_counter() - t0)
    outdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=outdir))
    try:
        t0 = time.perf_counter()
        export_scene(staging / name, options.formats)
        timings["save"] = 1000 * (time.perf_counter() - t0)
        if options.preview:
            t0 = time.perf_counter()
            front = np.asarray(Image.open(render_png(staging / "front.png")).convert("RGBA"))
            with turned_view(head.camera, head.mesh, head.armature, PREVIEW_TURN_DEGREES):
                turned = np.asarray(Image.open(render_png(staging / "turned.png")).convert("RGBA"))
            Image.fromarray(compose_preview(photo.rgb, front, turned)).save(staging / f"{name}_preview.png")
            timings["preview"] = 1000 * (time.perf_counter() - t0)
        report = {
            **result.to_json(),
            "timings_ms": {k: round(v, 2) for k, v in timings.items()},
            "outputs": [p.name for p in targets],
            "rig": {"vertices": len(rig.basis), "expression_keys": len(rig.expression_keys),
                    "corrective_drivers": head.drivers, "texture": list(textures.notes),
                    "texture_size": int(textures.albedo.shape[0]),
                    "displacement_range_m": textures.displacement_range},
            "sh_lighting": [light.tolist() for light in lights],
        }  # fmt: skip
        atomic_write(staging / f"{name}.json", lambda f: f.write(json.dumps(report, indent=1).encode()))
        for target in targets:  # each rename is atomic; all files exist before the first one moves
            os.replace(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(name, "ok", f"landmark RMS {result.photos[0].landmark_rms_px:.2f} px",
                   tuple(str(p) for p in targets), time.perf_counter() - start)  # fmt: skip


def photos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def progress_line(i: int, n: int, name: str, outcome: Outcome) -> str:
    bar = "#" * round(20 * (i + 1) / n)
    return f"[{bar:<20}] {i + 1}/{n} {name}: {outcome.status} {outcome.message} ({outcome.seconds:.1f} s)"


def run_batch(
    indir: Path, outdir: Path, model: FlameModel, options: ConvertOptions, embedding: Embedding | None = None
) -> list[Outcome]:
    """One head per photo; bad photos are reported and skipped; a JSON report is written last."""
    paths = photos_in(indir)
    outcomes = []
    with LandmarkDetector(options.pipeline.landmarks, options.pipeline.fallback) as detector:
        resources = Resources(detector, embedding)
        for i, path in enumerate(paths):
            start = time.perf_counter()
            try:
                outcome = convert([path], outdir, path.stem, model, options, resources)
            except FacesmithError as exc:
                outcome = Outcome(path.stem, "failed", str(exc), seconds=time.perf_counter() - start)
            outcomes.append(outcome)
            print(progress_line(i, len(paths), path.name, outcome), file=sys.stderr, flush=True)
    report = {"input": str(indir), "photos": len(paths), "results": [o.__dict__ for o in outcomes],
              "ok": sum(o.status == "ok" for o in outcomes), "failed": sum(o.status == "failed" for o in outcomes),
              "skipped": sum(o.status == "skipped" for o in outcomes)}  # fmt: skip
    outdir.mkdir(parents=True, exist_ok=True)
    atomic_write(outdir / "batch_report.json", lambda f: f.write(json.dumps(report, indent=1).encode()))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Entry for `python -m` and Blender's `--python-expr`: arguments after `--` when Blender passes them."""
    from ..inference.cli import main as cli_main

    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    return cli_main(list(argv))


if __name__ == "__main__":
    sys.exit(main())
