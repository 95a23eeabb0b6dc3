"""Readers for FLAME's topology files: UV layout, landmark embeddings, eyelid blendshapes.

These are shared by every FLAME release with the 5023-vertex mesh and ship beside the model
(FLAME download, DECA/RingNet data folders). Each reader returns arrays named as in FlameModel.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from . import safe_pickle
from .io import npz_headers, npz_read, read_bytes


def read_obj_uvs(path: Path) -> dict[str, np.ndarray]:
    """Faces, UV coordinates (origin bottom-left, as OBJ) and UV faces from a FLAME template OBJ."""
    vts: list[list[float]] = []
    faces: list[list[int]] = []
    uv_faces: list[list[int]] = []
    for number, line in enumerate(read_bytes(path).decode("utf-8", errors="replace").splitlines(), 1):
        try:
            _read_obj_line(line, vts, faces, uv_faces)
        except ValueError as exc:
            raise ModelFileError(path, f"line {number}: {exc}") from None
    if not vts or not faces:
        raise ModelFileError(path, "OBJ has no UVs or no faces")
    return {"faces": np.array(faces), "uv_coords": np.array(vts), "uv_faces": np.array(uv_faces)}


def _read_obj_line(line: str, vts: list[list[float]], faces: list[list[int]], uv_faces: list[list[int]]) -> None:
    """Append what one OBJ line holds; ValueError says what is wrong with it."""
    if line.startswith("vt "):
        uv = [float(x) for x in line.split()[1:3]]
        if len(uv) != 2 or not all(np.isfinite(uv)):
            raise ValueError("a UV (vt) needs two finite numbers")
        vts.append(uv)
    elif line.startswith("f "):
        corners = [c.split("/") for c in line.split()[1:]]
        if len(corners) != 3 or any(len(c) < 2 or not c[1] for c in corners):
            raise ValueError("OBJ faces must be triangles with UV indices (f v/vt ...)")
        vertices, uvs = [int(c[0]) - 1 for c in corners], [int(c[1]) - 1 for c in corners]
        if min(vertices + uvs) < 0:  # relative (negative) indices: FLAME's template has none
            raise ValueError("face indices must be positive")
        faces.append(vertices)
        uv_faces.append(uvs)


def _read_embedding(path: Path, kind: str) -> dict[str, np.ndarray]:
    """`{kind}_lmk_faces` and `{kind}_lmk_bary` from a pickled (or .npy-wrapped) embedding dict."""
    data = read_bytes(path)
    try:
        obj = safe_pickle.load_npy(data) if data.startswith(b"\x93NUMPY") else safe_pickle.loads(data)
    except Exception as exc:  # any parse failure of a hostile/corrupt file is a file error
        raise ModelFileError(path, f"cannot read landmark embedding ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict) or "lmk_face_idx" not in obj or "lmk_b_coords" not in obj:
        raise ModelFileError(path, "not a FLAME landmark embedding (needs lmk_face_idx, lmk_b_coords)")
    try:
        return {
            f"{kind}_lmk_faces": safe_pickle.to_numpy(obj["lmk_face_idx"]),
            f"{kind}_lmk_bary": safe_pickle.to_numpy(obj["lmk_b_coords"]),
        }
    except ValueError as exc:
        raise ModelFileError(path, f"not a FLAME landmark embedding ({exc})") from None


def read_static_embedding(path: Path) -> dict[str, np.ndarray]:
    """FLAME's 51 static landmarks (iBUG 17..67): `flame_static_embedding.pkl`."""
    return _read_embedding(path, "static")


def read_dynamic_embedding(path: Path) -> dict[str, np.ndarray]:
    """FLAME's 17 contour landmarks for each yaw from -39 to 39 degrees: `flame_dynamic_embedding.npy`."""
    return _read_embedding(path, "dynamic")


_MEDIAPIPE_NAMES = {  # name in the file -> name in FlameModel
    "lmk_face_idx": "mediapipe_lmk_faces",
    "lmk_b_coords": "mediapipe_lmk_bary",
    "landmark_indices": "mediapipe_lmk_indices",
}


def read_mediapipe_embedding(path: Path) -> dict[str, np.ndarray]:
    """The 105-point MediaPipe embedding: `mediapipe_landmark_embedding.npz`."""
    try:
        with zipfile.ZipFile(io.BytesIO(read_bytes(path))) as archive:
            missing = set(_MEDIAPIPE_NAMES) - set(npz_headers(path, archive, _MEDIAPIPE_NAMES))  # reads no data
            if missing:
                raise ModelFileError(path, f"not a MediaPipe landmark embedding (no {', '.join(sorted(missing))})")
            arrays = npz_read(archive, _MEDIAPIPE_NAMES)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(path, f"not a MediaPipe landmark embedding ({exc})") from None
    return {ours: arrays[theirs] for theirs, ours in _MEDIAPIPE_NAMES.items()}


def read_npy_array(path: Path) -> np.ndarray:
    data = read_bytes(path)
    if not data.startswith(b"\x93NUMPY"):
        raise ModelFileError(path, "not a .npy file")
    try:
        return safe_pickle.to_numpy(safe_pickle.load_npy(data))
    # An object .npy is a pickle: a corrupt one fails the way _load_pickle in io.py expects.
    except (ValueError, EOFError, pickle.UnpicklingError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ModelFileError(path, f"not a numeric .npy array ({exc})") from None


# File names as they ship beside FLAME (and in DECA / RingNet / MICA data folders) -> reader.
COMPANION_FILES = {
    "head_template.obj": read_obj_uvs,
    "flame_static_embedding.pkl": read_static_embedding,
    "flame_dynamic_embedding.npy": read_dynamic_embedding,
    "mediapipe_landmark_embedding.npz": read_mediapipe_embedding,
    "l_eyelid.npy": lambda p: {"eyelid_left": read_npy_array(p)},
    "r_eyelid.npy": lambda p: {"eyelid_right": read_npy_array(p)},
}


def read_companions(folder: Path) -> dict[str, np.ndarray]:
    """Topology arrays from whichever companion files exist in `folder`."""
    arrays: dict[str, np.ndarray] = {}
    for name, reader in COMPANION_FILES.items():
        if (folder / name).is_file():
            arrays.update(reader(folder / name))
    arrays.pop("faces", None)  # the model's own faces win; the OBJ is read for its UVs
    return arrays
