"""Which FLAME model to use, and loading it with its topology files.

Order: `--flame PATH`, then the `FACESMITH_FLAME` environment variable, then the add-on
preference, then the development model (with a warning: it is for development only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MissingAssetError
from .io import load_flame
from .model import FlameModel, make_model, model_arrays
from .topology import read_companions

ENV_VAR = "FACESMITH_FLAME"
FLAME_HELP = (
    "download FLAME 2023 Open (free, CC BY 4.0) from https://flame.is.tue.mpg.de and pass --flame PATH, "
    f"set {ENV_VAR}=PATH, or choose the file in the add-on preferences"
)
DEV_WARNING = "using the development model (FLAME 2023, 50/50 components): for development and tests only"
TOPOLOGY_FIELDS = (
    "uv_coords",
    "uv_faces",
    "static_lmk_faces",
    "static_lmk_bary",
    "dynamic_lmk_faces",
    "dynamic_lmk_bary",
    "mediapipe_lmk_faces",
    "mediapipe_lmk_bary",
    "mediapipe_lmk_indices",
    "eyelid_left",
    "eyelid_right",
)


PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the repository root, which is the package `facesmith`
# Learned MediaPipe -> FLAME correspondences shipped with Facesmith (see landmarks/embedding.py).
DENSE_EMBEDDING = PACKAGE_ROOT / "assets" / "mediapipe_dense_embedding.npz"


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    origin: str  # "--flame", "FACESMITH_FLAME", "preference" or "development model"


def default_dev_model_path() -> Path:
    """Where `setup.sh` / `facesmith model build-dev` put the development model: <repo>/.cache/models/."""
    return PACKAGE_ROOT / ".cache" / "models" / "dev_flame.npz"


def resolve_flame_path(
    flag: str | Path | None,
    env: Mapping[str, str],
    preference: str | Path | None = None,
    dev_model: Path | None = None,
) -> ModelChoice:
    """Pick the model file by precedence; an explicitly named file is returned even if missing
    (loading it then fails naming it), so a typo never silently falls back to another model."""
    for value, origin in ((flag, "--flame"), (env.get(ENV_VAR), ENV_VAR), (preference, "preference")):
        if value:
            return ModelChoice(Path(value).expanduser(), origin)
    if dev_model is not None and dev_model.is_file():
        return ModelChoice(dev_model, "development model")
    raise MissingAssetError(f"no FLAME model found: {FLAME_HELP}")


def load_model(choice: ModelChoice, donor: Path | None = None) -> FlameModel:
    """Load the chosen model; fill missing topology (UVs, landmark embeddings, eyelids) from files beside
    it, then from the development model `donor` if it has the same mesh."""
    model = load_flame(choice.path)
    warnings = list(model.warnings)
    if choice.origin == "development model" or model.is_development:
        warnings.append(DEV_WARNING)
    missing = [f for f in TOPOLOGY_FIELDS if getattr(model, f) is None]
    if missing:
        model = _add_topology(model, read_companions(choice.path.parent))
    missing = [f for f in TOPOLOGY_FIELDS if getattr(model, f) is None]
    if missing and donor is not None and donor.is_file() and donor.resolve() != choice.path.resolve():
        donor_model = load_flame(donor)
        if np.array_equal(donor_model.faces, model.faces):
            model = _add_topology(
                model, {f: getattr(donor_model, f) for f in missing if getattr(donor_model, f) is not None}
            )
            warnings.append(f"topology files ({', '.join(missing)}) taken from {donor}")
    missing = [f for f in TOPOLOGY_FIELDS if getattr(model, f) is None]
    if missing:
        warnings.append(f"{choice.path}: no {', '.join(missing)}; put FLAME's topology files beside it")
    return dataclasses.replace(model, warnings=tuple(warnings))


def _add_topology(model: FlameModel, arrays: dict[str, np.ndarray]) -> FlameModel:
    if not arrays:
        return model
    merged = {**{k: v for k, v in arrays.items() if k in TOPOLOGY_FIELDS}, **model_arrays(model)}
    return make_model(
        merged,
        model.source,
        source=model.source,
        description=model.description,
        is_development=model.is_development,
        warnings=model.warnings,
    )
