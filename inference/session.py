"""What the add-on's reconstruct job computes off Blender's main thread (no bpy here)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .albedo import TextureBaker
from .detect import available_backends, choose_backend
from .errors import FacesmithError
from .flame_model import FlameModel
from .images import Photo, load_photo
from .model_paths import default_dev_model_path, load_model, resolve_flame_path
from .pipeline import CancelledError, PipelineOptions, Progress, default_embedding, fit_photos
from .result import FitResult
from .rig_data import RigData, rig_data
from .textures import TextureSet, flat_textures


@dataclass(frozen=True)
class JobOptions:
    flame_path: str = ""  # the add-on preference; empty: FACESMITH_FLAME, then the development model
    landmarks: str = "mediapipe"
    texture_size: int = 1024
    textures: bool = True
    expression_keys: int = 50
    name: str = "head"


@dataclass(frozen=True)
class JobOutput:
    result: FitResult
    rig: RigData
    textures: TextureSet


def model_status(preference: str) -> str:
    """One line for the preferences: which model would be used and what it holds, or why none."""
    try:
        choice = resolve_flame_path(None, os.environ, preference or None, dev_model=default_dev_model_path())
        model = load_model(choice)
    except FacesmithError as exc:
        return f"Not usable: {exc}"
    kind = "development model" if model.is_development else model.description
    return (f"{choice.origin}: {model.n_vertices} vertices, {model.n_shape} shape / {model.n_expr} expression "
            f"components ({kind})")  # fmt: skip


def make_textures(
    model: FlameModel, result: FitResult, baker: TextureBaker | None
) -> tuple[TextureSet, Photo, list[np.ndarray]]:
    """Photo-derived albedo and displacement (`baker` None: a flat skin colour), the first photo at working
    size, and each photo's SH light."""
    photos = [load_photo(p.path) for p in result.photos]
    if baker is None:
        return flat_textures(photos[0].rgb, result.photos[0], photos[0].scale), photos[0], []
    textures, lights = baker.bake([(ph.rgb, ph.scale, fit) for ph, fit in zip(photos, result.photos, strict=True)])
    return textures, photos[0], lights


def load_job_model(options: JobOptions) -> FlameModel:
    choice = resolve_flame_path(None, os.environ, options.flame_path or None, dev_model=default_dev_model_path())
    return load_model(choice, donor=default_dev_model_path())


def run_job(
    photos: list[Path], options: JobOptions, progress: Progress | None = None, cancel: threading.Event | None = None
) -> JobOutput:
    """Fit, texture and prepare the rig arrays for one head from photos of one person."""
    report = progress or (lambda fraction, message: None)
    report(0.02, "loading the FLAME model")
    model = load_job_model(options)
    available = available_backends()
    backend, note = choose_backend(options.landmarks, available)
    fallback = next((b for b in available if b != backend), None)
    pipeline = PipelineOptions(landmarks=backend, fallback=fallback)
    result = fit_photos(photos, model, pipeline, progress=lambda f, m: report(0.05 + 0.6 * f, m), cancel=cancel,
                        embedding=default_embedding(model))  # fmt: skip
    if note:
        result = replace(result, warnings=(note, *result.warnings))
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled")
    report(0.7, "baking textures")
    baker = TextureBaker(model, options.texture_size) if options.textures else None
    textures, _, _ = make_textures(model, result, baker)
    report(0.9, "preparing the rig")
    rig = rig_data(model, result, 0, options.name, options.expression_keys or None)
    return JobOutput(result, rig, textures)
