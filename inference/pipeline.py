"""Photos of one person -> a rigged, textured head: load, detect, fit, texture, rig.

The one reconstruction path. The add-on's operator, `facesmith fit|reconstruct|batch` and Blender's command
line all go through `Reconstructor` (or `reconstruct`, its one-shot form); `addon/` only turns the
`HeadResult` into Blender data. Every default lives in `PipelineOptions`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BackendError, CancelledError, FacesmithError
from .fit import FitSolution, Observation, Pin, fit_person, solve_pins
from .fit.photometric import PhotoPixels, Refinement, refine_person, refines
from .fit.problem import PhotoState, Problem
from .flame.forward import flame_forward, landmarks68
from .flame.model import FLAME_MESH, FlameModel
from .flame.paths import DENSE_EMBEDDING, ModelChoice, default_dev_model_path, load_model, resolve_flame_path
from .images import Photo, load_photo
from .landmarks.detect import Detection, LandmarkDetector, available_backends, crop_detector, resolve_backends
from .landmarks.embedding import Embedding, load_embedding
from .options import DEFAULTS, PipelineOptions
from .result import FitResult, PhotoFit
from .rig import RigData, eye_geometry, rig_data
from .texture.albedo import TextureBaker
from .texture.eyes import EyeTexture, bake_eyes
from .texture.maps import TextureSet, flat_textures, srgb_to_linear

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class HeadResult:
    """One reconstructed head: the fit, its textures, the arrays of the rig, and what the preview shows."""

    fit: FitResult
    textures: TextureSet
    rig: RigData
    photo_rgb: np.ndarray  # (H, W, 3) uint8, the first photo at working size (the preview's first panel)
    lights: tuple[np.ndarray, ...]  # (9, 3) SH light fitted per photo; empty with flat textures
    timings_ms: dict[str, float]
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The fit's JSON view with the rig and texture facts beside it (written as NAME.json); each photo
        also says which share of its seen face was masked out of the albedo as hair, glasses, hands or
        shadow (`occluded_fraction`)."""
        fit = self.fit.to_json()
        for photo, fraction in zip(fit["photos"], self.textures.occluded_fractions, strict=False):
            photo["occluded_fraction"] = round(fraction, 4)
        return {
            **fit,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "warnings": list(self.warnings),
            "rig": {"vertices": len(self.rig.basis), "expression_keys": len(self.rig.expression_keys),
                    "corrective_keys": len(self.rig.correctives), "texture": list(self.textures.notes),
                    "texture_size": int(self.textures.albedo.shape[0]),
                    "fitted_expression_as": self.rig.fitted_as,
                    "arkit_weights": {k: round(v, 4) for k, v in self.rig.arkit_fitted.items()},
                    "arkit_rms_mm": None if self.rig.arkit_fitted_rms_mm is None else round(self.rig.arkit_fitted_rms_mm, 3),
                    "displacement_range_m": self.textures.displacement_range},
            "sh_lighting": [light.tolist() for light in self.lights],
            **({"eyes": self.textures.eyes.summary()} if self.textures.eyes is not None else {}),
        }  # fmt: skip


def model_choice(options: PipelineOptions) -> ModelChoice:
    """Which FLAME file the options name, and why (see PipelineOptions.flame_path)."""
    dev = default_dev_model_path()
    return resolve_flame_path(options.flame_path or None, os.environ, options.flame_preference or None, dev)


def load_pipeline_model(options: PipelineOptions) -> FlameModel:
    """The FLAME model the options name, with its topology completed from files beside it."""
    return load_model(model_choice(options), donor=default_dev_model_path())


def model_status(options: PipelineOptions) -> str:
    """One line for the add-on's preferences: which model would be used and what it holds, or why none."""
    try:
        choice = model_choice(options)
        model = load_model(choice)
    except FacesmithError as exc:
        return f"Not usable: {exc}"
    kind = "development model" if model.is_development else model.description
    return (f"{choice.origin}: {model.n_vertices} vertices, {model.n_shape} shape / {model.n_expr} expression "
            f"components ({kind})")  # fmt: skip


def default_embedding(model: FlameModel) -> Embedding | None:
    """The learned MediaPipe embedding shipped in assets/. It was learned on FLAME's mesh: for a model with
    another mesh (or without the file) None, and the fit uses the model's own embedding alone."""
    if not DENSE_EMBEDDING.is_file() or (model.n_vertices, model.n_faces) != FLAME_MESH:
        return None
    return load_embedding(DENSE_EMBEDDING, model)


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled")


def _quiet(fraction: float, message: str) -> None:
    pass


@dataclass(frozen=True)
class DetectedPhotos:
    photos: list[Photo]
    observations: list[Observation]
    detections: list[Detection]
    warnings: list[str]
    timings_ms: dict[str, float]


def detect_photos(
    paths: Sequence[str | Path], detector: LandmarkDetector, options: PipelineOptions,
    progress: Progress = _quiet, cancel: threading.Event | None = None,
) -> DetectedPhotos:  # fmt: skip
    """Load and detect each photo. One that fails is skipped with a warning when others succeed; if all
    fail, the first failure is raised."""
    timings = {"load": 0.0, "detect": 0.0}
    photos, observations, detections, warnings = [], [], [], []
    first_error: FacesmithError | None = None
    for i, path in enumerate(paths):
        check_cancel(cancel)
        progress(0.5 * i / len(paths), f"detecting {Path(path).name}")
        try:
            t0 = time.perf_counter()
            photo = load_photo(path, options.working_side)
            t1 = time.perf_counter()
            detection = detector.detect(photo, options.face_index)
            t2 = time.perf_counter()
        except FacesmithError as exc:
            first_error = first_error or exc
            warnings.append(f"skipped {exc}")
            continue
        timings["load"] += 1000 * (t1 - t0)
        timings["detect"] += 1000 * (t2 - t1)
        observations.append(Observation.from_face(detection.face, photo.to_original, photo.original_size))
        detections.append(detection)
        photos.append(photo)
        warnings += [f"{photo.path.name}: {w}" for w in (*photo.notes, *detection.warnings)]
    if not photos:
        raise first_error or FacesmithError("no photos given")
    return DetectedPhotos(photos, observations, detections, warnings, timings)


def posed_photo(model: FlameModel, shape: np.ndarray, state: PhotoState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo's pose (5, 3), posed mesh (V, 3) and the mesh's own 68 iBUG points in its pixels."""
    pose = state.pose()
    out = flame_forward(model, shape, state.expression, pose)
    model68 = state.camera.project(landmarks68(model, out)[0]) if model.has_landmarks68 else np.zeros((0, 2))
    return pose, out.vertices[0], model68


def pin_residuals(solution: FitSolution, pins: Sequence[Pin]) -> tuple[float, ...]:
    """Each pin's residual (px) in the order of `pins` (the solution keeps them per photo, in that order)."""
    queues = [list(r) for r in solution.pin_residuals_px]
    return tuple(float(queues[p.photo].pop(0)) for p in pins)


def assemble(
    model: FlameModel, solution: FitSolution, found: DetectedPhotos, confidences: list[float],
    agreement: Sequence[float] | None = None, pins: Sequence[Pin] = (),
) -> FitResult:  # fmt: skip
    """The fit as a result: per photo its expression, pose, camera, posed mesh, landmark residuals and (after a
    photo-consistency refinement) how well its colours agree with the other photos'; the pins it was solved with."""
    photos = []
    for i, (state, obs, det) in enumerate(zip(solution.photos, found.observations, found.detections, strict=True)):
        pose, vertices, model68 = posed_photo(model, solution.shape, state)
        names = solution.landmark_names[i]
        used = np.array([_observed_point(obs, n) for n in names])
        photos.append(PhotoFit(
            path=str(found.photos[i].path), image_size=obs.image_size, expression=state.expression, pose=pose,
            camera=state.camera, vertices=vertices, landmarks_px=used, landmark_names=names,
            residuals_px=solution.residuals_px[i], model_landmarks68_px=model68, face_size_px=obs.face_size,
            confidence=confidences[i], backend=det.backend, n_faces=det.n_faces, warnings=det.warnings,
            agreement=None if agreement is None else float(agreement[i]), observed68_px=obs.ibug68(),
        ))  # fmt: skip
    neutral = flame_forward(model, solution.shape).vertices[0]
    return FitResult(solution.shape, neutral, tuple(photos), model.description, model.source,
                     observations=tuple(found.observations), pins=tuple(pins),
                     pin_residuals_px=pin_residuals(solution, pins) if pins else ())  # fmt: skip


def detected_pins(
    pins: Sequence[Pin], paths: Sequence[str | Path], found: DetectedPhotos
) -> tuple[list[Pin], list[str]]:
    """Pins given against `paths` (Pin.photo indexes them) renumbered to the photos detection kept; the pins of a
    skipped photo are dropped, with a warning."""
    kept = {Path(ph.path): i for i, ph in enumerate(found.photos)}
    out, dropped = [], []
    for pin in pins:
        index = kept.get(Path(paths[pin.photo]))
        if index is None:
            dropped.append(Path(paths[pin.photo]).name)
        else:
            out.append(dataclasses.replace(pin, photo=index))
    warnings = [f"{name}: skipped, so its pins were not used" for name in dict.fromkeys(dropped)]
    return out, warnings


def _observed_point(obs: Observation, name: str) -> np.ndarray:
    scheme, index = name.split(":")
    return obs.points[int(index)] if scheme in ("mp", "dense") else obs.ibug68()[int(index)]


class Reconstructor:
    """The pipeline with what is worth creating once for many heads: the model, the landmark detector,
    the learned embedding and the UV raster. Use as a context manager (the detector holds native
    resources)."""

    def __init__(self, options: PipelineOptions = DEFAULTS, model: FlameModel | None = None) -> None:
        self.options = options
        self.model = model if model is not None else load_pipeline_model(options)
        primary, fallback, note = resolve_backends(options.landmarks, options.fallback)
        notes = [note] if note else []
        self.detector = LandmarkDetector(primary, fallback, options.device)
        if primary == "dense":
            primary, why = self._check_dense(options.landmarks == "auto")
            if why:
                notes.append(why)
                self.detector = LandmarkDetector(primary, fallback if fallback != primary else None, options.device)
        self.embedding = default_embedding(self.model)
        self.notes: tuple[str, ...] = tuple(notes)
        self._baker: TextureBaker | None = None

    def _check_dense(self, auto: bool) -> tuple[str, str | None]:
        """Load the dense network now and check it was trained for this FLAME basis. A mismatch (or a network
        that will not load) is an error when dense was asked for by name, or CUDA was; under "auto" the best
        detector takes over, with a warning saying why."""
        try:
            self.detector.backend_named("dense").landmarker.check_model(self.model)
        except BackendError as exc:
            if not auto or self.options.device == "cuda":
                self.detector.close()
                raise
            self.detector.close()
            detector = crop_detector(available_backends())
            return detector, f"dense landmarks not used ({exc}); using {detector}"
        return "dense", None

    @property
    def backend(self) -> str:
        return self.detector.primary_name

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Reconstructor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fit(
        self, paths: Sequence[str | Path], progress: Progress, cancel: threading.Event | None,
        pins: Sequence[Pin] = (),
    ) -> tuple[FitResult, list[Photo]]:  # fmt: skip
        found = detect_photos(paths, self.detector, self.options, progress, cancel)
        kept, dropped = detected_pins(pins, paths, found)
        found = dataclasses.replace(found, warnings=[*found.warnings, *dropped])
        return self.fit_detected(found, progress, cancel, kept), found.photos

    def fit_detected(
        self, found: DetectedPhotos, progress: Progress = _quiet, cancel: threading.Event | None = None,
        pins: Sequence[Pin] = (),
    ) -> FitResult:  # fmt: skip
        """The fit (and refinement) of photos already detected: what `fit` does after detection, then the re-solve
        with `pins` (indices into `found`'s photos) when there are any. Benchmarks use it to fit landmarks of their
        own (bench/refine.py's true landmarks)."""
        check_cancel(cancel)
        progress(0.5, "fitting FLAME to the landmarks")
        t0 = time.perf_counter()
        solution, confidences = fit_person(self.model, found.observations, self.options.fit, self.embedding)
        timings = {**found.timings_ms, "fit": 1000 * (time.perf_counter() - t0)}
        agreement, refine_warnings = None, ()
        if refines(self.options.fit, len(found.photos)):
            t0 = time.perf_counter()
            refined = self._refine(solution, confidences, found, progress, cancel)
            solution, agreement, refine_warnings = refined.solution, refined.agreement, refined.warnings
            timings["refine"] = 1000 * (time.perf_counter() - t0)
        if pins:
            t0 = time.perf_counter()
            solution = solve_pins(self.landmark_problem(found.observations, confidences), solution, pins)
            timings["pins"] = 1000 * (time.perf_counter() - t0)
        return dataclasses.replace(
            assemble(self.model, solution, found, confidences, agreement, pins),
            timings_ms={k: round(v, 2) for k, v in timings.items()},
            warnings=tuple(dict.fromkeys([*self.notes, *found.warnings, *self.model.warnings, *refine_warnings])),
        )

    def _refine(
        self, solution: FitSolution, confidences: list[float], found: DetectedPhotos, progress: Progress,
        cancel: threading.Event | None,
    ) -> Refinement:  # fmt: skip
        """The landmark fit refined by photo-consistency (fit/photometric.py), photos weighted by confidence."""
        problem = self.landmark_problem(found.observations, confidences)
        pixels = [PhotoPixels(srgb_to_linear(ph.rgb / 255.0).astype(np.float32), ph.scale) for ph in found.photos]
        names = [ph.path.name for ph in found.photos]
        return refine_person(problem, solution, pixels, names, self.options.fit,
                             lambda f, m: progress(0.5 + 0.2 * f, m), cancel)  # fmt: skip

    def landmark_problem(self, observations: Sequence[Observation], confidences: Sequence[float]) -> Problem:
        """The landmark problem of a person's photos, weighted by their confidences (the refinement's and the pins'
        re-solve's)."""
        weights = np.asarray(confidences) / max(max(confidences), 1e-6)
        return Problem(self.model, list(observations), self.options.fit, weights, self.embedding)

    def fit(
        self, paths: Sequence[str | Path], progress: Progress = _quiet, cancel: threading.Event | None = None,
        pins: Sequence[Pin] = (),
    ) -> FitResult:  # fmt: skip
        """Fit one head to photos of one person (no textures, no rig): `facesmith fit`. `pins` index `paths`."""
        return self._fit(paths, progress, cancel, pins)[0]

    def textures(self, result: FitResult, photos: list[Photo]) -> tuple[TextureSet, tuple[np.ndarray, ...]]:
        """Photo-derived albedo and displacement, or a flat skin colour; each photo's SH light; and (either way)
        the eyeballs' texture with the photos' irises."""
        inputs = [(ph.rgb, ph.scale, fit) for ph, fit in zip(photos, result.photos, strict=True)]
        if not self.options.textures:
            flat = flat_textures(photos[0].rgb, result.photos[0], photos[0].scale)
            return dataclasses.replace(flat, eyes=self._eyes(result, inputs, flat)), ()
        size, constancy = self.options.texture_size, self.options.colour_constancy
        if self._baker is None or (self._baker.size, self._baker.colour_constancy) != (size, constancy):
            self._baker = TextureBaker(self.model, size, colour_constancy=constancy)
        textures, lights = self._baker.bake(inputs)
        detail = (textures.displacement * self.options.detail_strength).astype(np.float32)
        return dataclasses.replace(textures, displacement=detail, eyes=self._eyes(result, inputs, textures)), tuple(
            lights
        )

    def _eyes(self, result: FitResult, inputs: list, textures: TextureSet) -> EyeTexture:
        """The eyeballs' texture; the irises corrected like the skin: divided by each photo's white balance ×
        exposure where the albedo stage estimated them (TextureSet.photo_gains), else as the photos show them."""
        gains = None
        if len(textures.photo_gains) == len(inputs):
            gains = [1.0 / np.asarray(g, np.float64) for g in textures.photo_gains]
        return bake_eyes(inputs, eye_geometry(self.model, result.neutral_vertices), gains)

    def run(
        self, paths: Sequence[str | Path], name: str | None = None, progress: Progress = _quiet,
        cancel: threading.Event | None = None, pins: Sequence[Pin] = (),
    ) -> HeadResult:  # fmt: skip
        """Photos of one person -> one head named `name` (default: the first photo's name), corrected by the
        artist's `pins` (Pin.photo indexes `paths`) if any."""
        name = name or Path(paths[0]).stem
        result, photos = self._fit(paths, progress, cancel, pins)
        check_cancel(cancel)
        progress(0.7, "baking textures")
        t0 = time.perf_counter()
        textures, lights = self.textures(result, photos)
        t1 = time.perf_counter()
        check_cancel(cancel)
        progress(0.9, "preparing the rig")
        rig = rig_data(
            self.model, result, 0, name, self.options.expression_keys or None, self.options.fitted_expression
        )
        timings = {**result.timings_ms, "textures": 1000 * (t1 - t0), "rig": 1000 * (time.perf_counter() - t1)}
        texture_warnings = textures.notes if self.options.textures else ()  # flat: a note, not a warning
        warnings = result.warnings + tuple(w for w in texture_warnings if w not in result.warnings)
        return HeadResult(result, textures, rig, photos[0].rgb, lights, timings, warnings)


def reconstruct(
    photos: Sequence[str | Path], options: PipelineOptions = DEFAULTS, progress: Progress = _quiet,
    cancel: threading.Event | None = None, model: FlameModel | None = None, name: str | None = None,
    pins: Sequence[Pin] = (),
) -> HeadResult:  # fmt: skip
    """One head from photos of one person, in one call (a `Reconstructor` used once), with `pins` if any."""
    with Reconstructor(options, model) as reconstructor:
        return reconstructor.run(photos, name, progress, cancel, pins)
