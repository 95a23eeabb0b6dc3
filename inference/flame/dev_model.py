"""Assemble the development model from the FLAME parts staged in ../shared/flame.

The parts are FLAME 2023 cut to 50 shape + 50 expression components (see that folder's SOURCES.md).
Every file is checked by size and SHA-256 before it is read, so a changed or partial copy fails early.
The result is only for development and tests: users supply their own FLAME file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .io import read_bytes
from .model import DEV_DESCRIPTION, FLAME_MESH, FlameModel, make_model
from .topology import (
    read_dynamic_embedding,
    read_mediapipe_embedding,
    read_npy_array,
    read_obj_uvs,
    read_static_embedding,
)

N_DEV_COMPONENTS = 50

# relative path -> (size in bytes, sha256)
PARTS: dict[str, tuple[int, str]] = {
    "facial_ai_project/flame_template_vertices.bin": (
        60276,
        "ec56c89562ee27cfe5a125be9faf062f86f7093188bb829723cc5b5b686ed55c",
    ),
    "facial_ai_project/flame_shape_basis.bin": (
        3013800,
        "bff690817cb17c42321b91cde9cc594f281ba6e32f1d40af247d2ce549955385",
    ),
    "facial_ai_project/flame_expression_basis.bin": (
        3013800,
        "b99e60a3e870039414b8cc67c0d2bd4fb8689111258061c99b1b9fa330959f70",
    ),
    "sarasti/flame_posedirs.bin": (2169936, "83b22c7cf6aef4a46f5e0f7115626d8774b11dac42c604e77af1c00624a22e85"),
    "sarasti/flame_weights.bin": (100460, "958221698cc84b2e567609e6d9d7f4031cc346a8bcec4e79c2d8a2c9064b2379"),
    "sarasti/flame_J_regressor.bin": (100460, "9fc57b5c749c12ecc98efbdd6e4e68d86c900cfbc34b2bb45038c0fada15a716"),
    "sarasti/flame_kintree.json": (43, "feaa1a4d23c67b223778e8fb6e1490d6812469c9cf795a3da1bcc36480d9e299"),
    "deca/head_template.obj": (563358, "dd5bfbce75adb99b1963f43bca7ec3557bd4a7321f8fc515f4100599e80d99f2"),
    "ringnet/flame_static_embedding.pkl": (4380, "2881bdad8e61e87aad83a3df2e04655c534694089f68ca7144e7350da9e8ad62"),
    "ringnet/flame_dynamic_embedding.npy": (42639, "fd046a4740f5e6837e65622d0e050273bb71bbcb1ad6ab322474013a2a23de37"),
    "metrical_tracker/mediapipe_landmark_embedding.npz": (
        4518,
        "8863363013fc6fe3752d4318ea02a1784970200616a54b785920cdd0568816fc",
    ),
    "metrical_tracker/l_eyelid.npy": (120680, "fa50997166c2f884fbfc577d99fe8707966763fc3d83a1870bb786df6cc9410d"),
    "metrical_tracker/r_eyelid.npy": (120680, "dd78776fed765be4468889dd7d5b54b4bf61c8efbb2869b5b91409ce798aad8d"),
}


def check_parts(parts_dir: Path) -> dict[str, Path]:
    """Verify every part's size and hash; return their paths."""
    paths = {}
    for rel, (size, digest) in PARTS.items():
        path = parts_dir / rel
        data = read_bytes(path)
        if len(data) != size:
            raise ModelFileError(path, f"size {len(data)} bytes, expected {size} (partial or changed copy?)")
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelFileError(path, "SHA-256 does not match the staged FLAME part")
        paths[rel] = path
    return paths


def _raw_f32(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype="<f4").reshape(shape)


def build_dev_model(parts_dir: str | Path) -> FlameModel:
    """Assemble (and validate) the development FLAME model from the staged parts."""
    p = check_parts(Path(parts_dir))
    v, k = FLAME_MESH[0], N_DEV_COMPONENTS
    kintree = np.array(json.loads(p["sarasti/flame_kintree.json"].read_text()), dtype=np.int64)
    parents = np.where(kintree[0] >= 2**31, -1, kintree[0])  # uint32 max marks the root
    arrays = {
        "v_template": _raw_f32(p["facial_ai_project/flame_template_vertices.bin"], (v, 3)),
        "shapedirs": _raw_f32(p["facial_ai_project/flame_shape_basis.bin"], (v, 3, k)),
        "exprdirs": _raw_f32(p["facial_ai_project/flame_expression_basis.bin"], (v, 3, k)),
        # stored as (36, V, 3); the official layout is (V, 3, 36)
        "posedirs": _raw_f32(p["sarasti/flame_posedirs.bin"], (36, v, 3)).transpose(1, 2, 0),
        "lbs_weights": _raw_f32(p["sarasti/flame_weights.bin"], (v, 5)),
        "j_regressor": _raw_f32(p["sarasti/flame_J_regressor.bin"], (5, v)),
        "parents": parents,
        **read_obj_uvs(p["deca/head_template.obj"]),
        **read_static_embedding(p["ringnet/flame_static_embedding.pkl"]),
        **read_dynamic_embedding(p["ringnet/flame_dynamic_embedding.npy"]),
        **read_mediapipe_embedding(p["metrical_tracker/mediapipe_landmark_embedding.npz"]),
        "eyelid_left": read_npy_array(p["metrical_tracker/l_eyelid.npy"]),
        "eyelid_right": read_npy_array(p["metrical_tracker/r_eyelid.npy"]),
    }
    return make_model(arrays, parts_dir, source=str(parts_dir), description=DEV_DESCRIPTION, is_development=True)
