"""The reconstruction result: numpy only, saved as .npz (arrays) + .json (everything readable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .camera import Camera
from .files import atomic_write

if TYPE_CHECKING:  # the fit's targets import the landmark detectors (Pillow, OpenCV): not for the add-on's register
    from .fit.targets import Observation, Pin

FORMAT = "facesmith-result-1"


@dataclass(frozen=True)
class PhotoFit:
    path: str
    image_size: tuple[int, int]  # (width, height) of the upright original
    expression: np.ndarray  # (n_expr,)
    pose: np.ndarray  # (5, 3) axis-angle: global, neck, jaw, eye_L, eye_R
    camera: Camera  # maps FLAME metres to original-photo pixels
    vertices: np.ndarray  # (V, 3) posed mesh, metres
    landmarks_px: np.ndarray  # (L, 2) detected points the fit used
    landmark_names: tuple[str, ...]  # "mp:<index>" / "ibug:<index>" / "dense:<row>" for each of them
    residuals_px: np.ndarray  # (L,) distance of the fitted model point to each
    model_landmarks68_px: np.ndarray  # (68, 2) the fitted mesh's own iBUG landmarks, projected
    face_size_px: float
    confidence: float  # weight in a several-photo fit, 0..1
    backend: str
    n_faces: int
    warnings: tuple[str, ...] = ()
    # After a photo-consistency refinement (several photos): how well this photo's de-lit skin agrees with another
    # photo's (its best correlation, −1..1; fit/photometric.py); None when there was none.
    agreement: float | None = None
    # The photo's own 68 iBUG points as detected (original px), whatever the backend (a dense fit names its points
    # "dense:<row>", so the iBUG ones cannot be found by name); None where unknown (results of older files).
    observed68_px: np.ndarray | None = None

    @property
    def landmark_rms_px(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_px**2)))

    def summary(self) -> dict:
        return {
            "path": self.path,
            "image_size": list(self.image_size),
            "expression": self.expression.tolist(),
            "pose": self.pose.tolist(),
            "camera": self.camera.to_dict(),
            "landmark_rms_px": self.landmark_rms_px,
            "landmark_rms_normalised": self.landmark_rms_px / self.face_size_px,
            "model_landmarks68_px": self.model_landmarks68_px.tolist(),
            "face_size_px": self.face_size_px,
            "confidence": self.confidence,
            "agreement": self.agreement,
            "backend": self.backend,
            "n_faces": self.n_faces,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class FitResult:
    shape: np.ndarray  # (n_shape,) shared by all photos
    neutral_vertices: np.ndarray  # (V, 3) identity only: zero expression and pose
    photos: tuple[PhotoFit, ...]
    model_description: str
    model_source: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # What a re-solve with pins needs (inference/pins.py): each photo's landmarks as the fit used them. In memory
    # only: a result loaded from its files has none (re-run the fit to pin it).
    observations: tuple[Observation, ...] = ()
    pins: tuple[Pin, ...] = ()  # the artist's pins the head was solved with (photo = index into `photos`)
    pin_residuals_px: tuple[float, ...] = ()  # per pin: how far its point landed from where it was put

    def to_json(self) -> dict:
        """JSON view. Top-level expression/pose/camera/... are those of the first photo; `photos` has all."""
        first = self.photos[0].summary()
        return {
            "format": FORMAT,
            "model": {"description": self.model_description, "source": self.model_source},
            "shape": self.shape.tolist(),
            **{k: first[k] for k in ("expression", "pose", "camera", "landmark_rms_px", "model_landmarks68_px")},
            "timings_ms": self.timings_ms,
            "warnings": list(self.warnings),
            "photos": [p.summary() for p in self.photos],
            "pins": [pin_json(pin, r) for pin, r in zip(self.pins, self.pin_residuals_px, strict=True)],
        }

    def save(self, stem: str | Path) -> tuple[Path, Path]:
        """Write STEM.npz and STEM.json, each atomically."""
        stem = Path(stem)
        arrays = {"shape": self.shape, "neutral_vertices": self.neutral_vertices.astype(np.float32)}
        for i, p in enumerate(self.photos):
            arrays.update({
                f"p{i}_expression": p.expression, f"p{i}_pose": p.pose, f"p{i}_vertices": p.vertices.astype(np.float32),
                f"p{i}_landmarks_px": p.landmarks_px, f"p{i}_residuals_px": p.residuals_px,
                f"p{i}_model_landmarks68_px": p.model_landmarks68_px,
                **({} if p.observed68_px is None else {f"p{i}_observed68_px": p.observed68_px}),
            })  # fmt: skip
        meta = self.to_json()
        meta["photos"] = [
            {**s, "landmark_names": list(p.landmark_names)} for s, p in zip(meta["photos"], self.photos, strict=True)
        ]
        npz = atomic_write(stem.with_suffix(".npz"), lambda f: np.savez_compressed(f, **arrays))
        js = atomic_write(stem.with_suffix(".json"), lambda f: f.write(json.dumps(meta, indent=1).encode()))
        return npz, js

    @staticmethod
    def load(stem: str | Path) -> FitResult:
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{stem}.json: not a Facesmith result (format {meta.get('format')!r})")
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        photos = tuple(
            PhotoFit(
                path=s["path"], image_size=tuple(s["image_size"]), expression=a[f"p{i}_expression"], pose=a[f"p{i}_pose"],
                camera=Camera.from_dict(s["camera"]), vertices=a[f"p{i}_vertices"].astype(np.float64),
                landmarks_px=a[f"p{i}_landmarks_px"], landmark_names=tuple(s["landmark_names"]),
                residuals_px=a[f"p{i}_residuals_px"], model_landmarks68_px=a[f"p{i}_model_landmarks68_px"],
                face_size_px=s["face_size_px"], confidence=s["confidence"], backend=s["backend"], n_faces=s["n_faces"],
                warnings=tuple(s["warnings"]), agreement=s.get("agreement"), observed68_px=a.get(f"p{i}_observed68_px"),
            )
            for i, s in enumerate(meta["photos"])
        )  # fmt: skip
        from .fit.targets import Pin

        pins = [(Pin(p["photo"], p["face"], tuple(p["bary"]), tuple(p["xy"])), p["residual_px"])
                for p in meta.get("pins", [])]  # fmt: skip
        return FitResult(
            a["shape"],
            a["neutral_vertices"].astype(np.float64),
            photos,
            meta["model"]["description"],
            meta["model"]["source"],
            meta["timings_ms"],
            tuple(meta["warnings"]),
            pins=tuple(p for p, _ in pins),
            pin_residuals_px=tuple(r for _, r in pins),
        )


def pin_json(pin: Pin, residual_px: float | None = None) -> dict:
    """A pin as the pins file writes it (README: "Correcting the head with pins"), with its residual if given."""
    entry = {"photo": pin.photo, "face": pin.face, "bary": list(pin.bary), "xy": list(pin.xy)}
    return entry if residual_px is None else {**entry, "residual_px": round(float(residual_px), 3)}


def pins_text(pins: Sequence[Pin], residuals_px: Sequence[float] = ()) -> str:
    """`pins` as the text of a pins file (photo as an index), each with its residual where one is given: what a
    head in Blender keeps (addon/head.py, addon/pins.py)."""
    return json.dumps([pin_json(p, residuals_px[i] if i < len(residuals_px) else None) for i, p in enumerate(pins)])
