"""The FLAME model as plain numpy arrays, with shape and dtype validation.

Layouts follow the official pickle: bases are (V, 3, K), posedirs (V, 3, 36) with pose feature
k = (joint - 1) * 9 + row * 3 + col of (R - I) for joints 1..4, LBS weights (V, J).
Units are metres, frame x right, y up, z towards the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

N_JOINTS = 5  # global, neck, jaw, left eye, right eye
JOINT_NAMES = ("global", "neck", "jaw", "eye_L", "eye_R")
N_POSE_FEATURES = (N_JOINTS - 1) * 9
DEV_DESCRIPTION = "development model (FLAME 2023, 50/50 components)"
FLAME_MESH = (5023, 9976)  # vertices, triangles: the mesh every FLAME release shares


@dataclass(frozen=True)
class FlameModel:
    v_template: np.ndarray  # (V, 3) float
    shapedirs: np.ndarray  # (V, 3, n_shape)
    exprdirs: np.ndarray  # (V, 3, n_expr)
    posedirs: np.ndarray  # (V, 3, 36)
    j_regressor: np.ndarray  # (5, V) dense
    lbs_weights: np.ndarray  # (V, 5)
    parents: np.ndarray  # (5,) int, -1 for the root
    faces: np.ndarray  # (F, 3) int
    # Topology extras: shared by every FLAME release with this mesh; None when not supplied.
    uv_coords: np.ndarray | None = None  # (T, 2) in [0, 1]
    uv_faces: np.ndarray | None = None  # (F, 3) indices into uv_coords
    static_lmk_faces: np.ndarray | None = None  # (51,) iBUG points 17..67
    static_lmk_bary: np.ndarray | None = None  # (51, 3)
    dynamic_lmk_faces: np.ndarray | None = None  # (79, 17) contour by yaw in degrees
    dynamic_lmk_bary: np.ndarray | None = None  # (79, 17, 3)
    mediapipe_lmk_faces: np.ndarray | None = None  # (105,)
    mediapipe_lmk_bary: np.ndarray | None = None  # (105, 3)
    mediapipe_lmk_indices: np.ndarray | None = None  # (105,) indices into MediaPipe's 478 points
    eyelid_left: np.ndarray | None = None  # (V, 3) eyelid-close blendshape
    eyelid_right: np.ndarray | None = None  # (V, 3)
    source: str = ""
    description: str = ""
    is_development: bool = False
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def n_joints(self) -> int:
        return int(self.j_regressor.shape[0])

    @property
    def has_landmarks68(self) -> bool:
        return self.static_lmk_faces is not None and self.dynamic_lmk_faces is not None

    @property
    def has_mediapipe(self) -> bool:
        return self.mediapipe_lmk_faces is not None

    def eyeball_triangles(self, threshold: float = 0.5) -> np.ndarray:
        """(F,) bool: triangles with a corner skinned mostly to an eye joint (they turn with the gaze)."""
        eye_weight = self.lbs_weights[self.faces][..., 3:5].sum(-1)  # (F, 3): joints 3, 4 are the eyes
        return (eye_weight > threshold).any(axis=1)

    def info(self) -> dict:
        """Summary for `facesmith model info`."""
        return {
            "source": self.source,
            "description": self.description,
            "development_model": self.is_development,
            "vertices": self.n_vertices,
            "faces": self.n_faces,
            "joints": self.n_joints,
            "shape_components": self.n_shape,
            "expression_components": self.n_expr,
            "uv": self.uv_coords is not None,
            "landmarks68": self.has_landmarks68,
            "landmarks_mediapipe": int(self.mediapipe_lmk_faces.shape[0]) if self.has_mediapipe else 0,
            "eyelids": self.eyelid_left is not None,
            "warnings": list(self.warnings),
        }


# name -> (shape with symbols, dtype kind "f" float / "i" integer, required)
# Symbols: V vertices, F faces, S shape comps, E expr comps, T uv coords.
ARRAY_SPECS: dict[str, tuple[tuple, str, bool]] = {
    "v_template": (("V", 3), "f", True),
    "shapedirs": (("V", 3, "S"), "f", True),
    "exprdirs": (("V", 3, "E"), "f", True),
    "posedirs": (("V", 3, N_POSE_FEATURES), "f", True),
    "j_regressor": ((N_JOINTS, "V"), "f", True),
    "lbs_weights": (("V", N_JOINTS), "f", True),
    "parents": ((N_JOINTS,), "i", True),
    "faces": (("F", 3), "i", True),
    "uv_coords": (("T", 2), "f", False),
    "uv_faces": (("F", 3), "i", False),
    "static_lmk_faces": ((51,), "i", False),
    "static_lmk_bary": ((51, 3), "f", False),
    "dynamic_lmk_faces": ((79, 17), "i", False),
    "dynamic_lmk_bary": ((79, 17, 3), "f", False),
    "mediapipe_lmk_faces": (("M",), "i", False),
    "mediapipe_lmk_bary": (("M", 3), "f", False),
    "mediapipe_lmk_indices": (("M",), "i", False),
    "eyelid_left": (("V", 3), "f", False),
    "eyelid_right": (("V", 3), "f", False),
}


_SIZE_NAMES = {
    "V": "vertices",
    "F": "faces",
    "S": "shape components",
    "E": "expression components",
    "T": "UV coordinates",
    "M": "MediaPipe landmarks",
}


def check_shapes(shapes: dict[str, tuple[int, ...]], path: str | Path) -> dict[str, int]:
    """Check array shapes against ARRAY_SPECS; return the symbolic sizes (V, F, ...) they agree on.

    Works on shapes alone, so a loader can check what a file declares before reading any data.
    """
    path = Path(path)
    seen: dict[str, dict[int, list[str]]] = {}  # symbol -> size -> arrays with that size
    for name, (spec, _, required) in ARRAY_SPECS.items():
        shape = shapes.get(name)
        if shape is None:
            if required:
                raise ModelFileError(path, f"missing array '{name}'")
            continue
        if len(shape) != len(spec):
            raise ModelFileError(path, f"'{name}' has shape {shape}, expected {len(spec)} dimensions {spec}")
        for dim, want in zip(shape, spec, strict=True):
            if isinstance(want, str):
                seen.setdefault(want, {}).setdefault(dim, []).append(name)
            elif dim != want:
                raise ModelFileError(path, f"'{name}' has shape {shape}, expected {spec}")
    for symbol, by_size in seen.items():
        if len(by_size) > 1:
            raise ModelFileError(path, _disagreement(symbol, by_size, shapes))
    return {symbol: next(iter(by_size)) for symbol, by_size in seen.items()}


def _disagreement(symbol: str, by_size: dict[int, list[str]], shapes: dict[str, tuple[int, ...]]) -> str:
    # Blame the odd ones out: the size most arrays share is taken as right (ties go to the array
    # listed first in ARRAY_SPECS, the required ones), e.g. a short v_template, not shapedirs.
    size, names = max(by_size.items(), key=lambda item: len(item[1]))
    noun = _SIZE_NAMES.get(symbol, symbol)
    odd = [
        f"'{n}' has shape {shapes[n]} ({other} {noun})" for other, ns in by_size.items() if other != size for n in ns
    ]
    verb = "has" if len(names) == 1 else "have"
    return f"{'; '.join(odd)}, but {', '.join(names)} {verb} {size}"


def validate_arrays(arrays: dict[str, np.ndarray], path: str | Path) -> dict[str, np.ndarray]:
    """Check every array's presence, shape, dtype and values; return them cast to working dtypes.

    Floats become float64 (the forward pass is accurate to 1e-6 and the model is small);
    integer index arrays become int64 and are range-checked so indexing can never go out of bounds.
    """
    path = Path(path)
    given = {name: np.asarray(arrays[name]) for name in ARRAY_SPECS if arrays.get(name) is not None}
    for name, arr in given.items():
        kind = ARRAY_SPECS[name][1]
        if arr.dtype.hasobject:
            raise ModelFileError(path, f"'{name}' holds Python objects (dtype object), not numbers")
        if arr.dtype.kind not in ("f", "i", "u", "b") or (kind == "i" and arr.dtype.kind == "f"):
            raise ModelFileError(
                path, f"'{name}' has dtype {arr.dtype}, expected {'integer' if kind == 'i' else 'float'}"
            )
    sizes = check_shapes({name: arr.shape for name, arr in given.items()}, path)
    out: dict[str, np.ndarray] = {}
    for name, arr in given.items():
        if ARRAY_SPECS[name][1] == "f":
            arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                raise ModelFileError(path, f"'{name}' contains NaN or infinite values")
        else:
            arr = arr.astype(np.int64)
        out[name] = arr
    n_v, n_f = sizes["V"], sizes["F"]
    _check_range(out["faces"], 0, n_v, "faces", path)
    if "uv_faces" in out:
        if "uv_coords" not in out:
            raise ModelFileError(path, "'uv_faces' given without 'uv_coords'")
        _check_range(out["uv_faces"], 0, sizes["T"], "uv_faces", path)
    for name in ("static_lmk_faces", "dynamic_lmk_faces", "mediapipe_lmk_faces"):
        if name in out:
            _check_range(out[name], 0, n_f, name, path)
    parents = out["parents"]
    if parents[0] != -1 or any(not 0 <= p < i for i, p in enumerate(parents[1:], start=1)):
        raise ModelFileError(path, f"kinematic tree {parents.tolist()} is not a tree rooted at joint 0")
    if not np.allclose(out["lbs_weights"].sum(axis=1), 1.0, atol=1e-3):
        raise ModelFileError(path, "LBS weights do not sum to 1 per vertex")
    pairs = (
        ("static_lmk_faces", "static_lmk_bary"),
        ("dynamic_lmk_faces", "dynamic_lmk_bary"),
        ("mediapipe_lmk_faces", "mediapipe_lmk_bary"),
        ("mediapipe_lmk_faces", "mediapipe_lmk_indices"),
    )
    for a, b in pairs:
        if (a in out) != (b in out):
            raise ModelFileError(path, f"'{a}' and '{b}' must be given together")
    return out


def _check_range(idx: np.ndarray, lo: int, hi: int, name: str, path: Path) -> None:
    if idx.size and (idx.min() < lo or idx.max() >= hi):
        raise ModelFileError(path, f"'{name}' indices out of range [{lo}, {hi})")


def make_model(arrays: dict[str, np.ndarray], path: str | Path, **meta) -> FlameModel:
    """Validate arrays and build a FlameModel; `meta` sets source/description/is_development/warnings."""
    return FlameModel(**validate_arrays(arrays, path), **meta)


def model_arrays(model: FlameModel) -> dict[str, np.ndarray]:
    """The model's arrays by name (the inverse of make_model), for saving."""
    return {name: getattr(model, name) for name in ARRAY_SPECS if getattr(model, name) is not None}
