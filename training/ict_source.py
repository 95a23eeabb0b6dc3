"""ICT-FaceKit's data for the transfer scripts (ict_arkit.py, ict_mouth.py), from either of its two forms:

- the npz pack in ../shared/ict (its SOURCES.md gives the layout), or
- the repository's own `FaceXModel/` folder: `generic_neutral_mesh.obj`, one OBJ per expression (full meshes,
  names in `vertex_indices.json["expressions"]`, plus the 4 files the SDK does not load) and `vertex_indices.json`.

From the folder, the arrays the scripts use are rebuilt: the neutral mesh and its faces (OBJ order, quads, −1
padded triangles), expression deltas (`<name>.obj` − neutral), the 68 landmark vertices, and the part and tooth
vertex ranges of ICT-FaceKit's README geometry tables (held here, half-open); face ranges follow from them (a
face belongs to the part of its highest vertex: the socket's rim faces reach into the face part's lips).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

# ICT-FaceKit README, "Geometry": part -> vertex range [start, stop).
PART_VERTEX_RANGES = {
    "face": (0, 9409), "head_and_neck": (9409, 11248), "mouth_socket": (11248, 13294),
    "eye_socket_left": (13294, 13678), "eye_socket_right": (13678, 14062), "gums_and_tongue": (14062, 17039),
    "teeth": (17039, 21451), "eyeball_left": (21451, 23021), "eyeball_right": (23021, 24591),
    "lacrimal_fluid_left": (24591, 24795), "lacrimal_fluid_right": (24795, 24999),
    "eye_blend_left": (24999, 25023), "eye_blend_right": (25023, 25047), "eye_occlusion_left": (25047, 25199),
    "eye_occlusion_right": (25199, 25351), "eyelashes_left": (25351, 26035), "eyelashes_right": (26035, 26719),
}  # fmt: skip
# ICT-FaceKit README, "Teeth": the 32 teeth's vertex ranges, in its order (upper left molar ... lower right molar).
TOOTH_STARTS = (
    17039, 17230, 17416, 17607, 17730, 17895, 17991, 18067, 18143, 18219, 18295, 18391, 18556, 18679, 18870, 19056,
    19247, 19426, 19602, 19814, 19952, 20079, 20169, 20263, 20349, 20435, 20529, 20619, 20746, 20884, 21096, 21272,
    21451,
)  # fmt: skip


def read_obj(path: Path, faces: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices (V, 3) of an OBJ and, with `faces`, its faces (F, 4) as 0-based vertex ids, −1 padded."""
    verts, polys = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("v "):
                verts.append(line[2:].split()[:3])
            elif faces and line.startswith("f "):
                ids = [int(c.split("/")[0]) - 1 for c in line[2:].split()]
                polys.append((ids + [-1] * 4)[:4])
    return np.asarray(verts, np.float64), (np.asarray(polys, np.int32) if faces else None)


def face_ranges(faces: np.ndarray, vertex_ranges: list[tuple[int, int]]) -> np.ndarray:
    """Each part's face range: the faces whose highest vertex lies in its vertex range (contiguous in the OBJ)."""
    top = faces.max(axis=1)
    out = []
    for lo, hi in vertex_ranges:
        idx = np.flatnonzero((top >= lo) & (top < hi))
        out.append((int(idx.min()), int(idx.max()) + 1) if len(idx) else (0, 0))
    return np.asarray(out, np.int32)


def load_folder(folder: Path) -> dict[str, np.ndarray]:
    config = json.loads((folder / "vertex_indices.json").read_text())
    neutral, faces = read_obj(folder / "generic_neutral_mesh.obj", faces=True)
    in_config = list(config["expressions"])
    extra = sorted(p.stem for p in folder.glob("*.obj") if p.stem not in in_config and p.stem != "generic_neutral_mesh"
                   and not p.stem.startswith("identity"))  # fmt: skip
    names = in_config + extra
    deltas = np.stack([read_obj(folder / f"{n}.obj")[0] - neutral for n in names]).astype(np.float16)
    ranges = list(PART_VERTEX_RANGES.values())
    teeth = list(zip(TOOTH_STARTS[:-1], TOOTH_STARTS[1:], strict=True))
    return {
        "neutral": neutral.astype(np.float32), "faces": faces, "expression_deltas": deltas,
        "expression_names": np.array(names), "expression_in_config": np.array([n in in_config for n in names]),
        "landmarks_multipie68": np.asarray(config["idx_to_landmark_verts"], np.int32),
        "part_names": np.array(list(PART_VERTEX_RANGES)), "part_vertex_ranges": np.asarray(ranges, np.int32),
        "part_face_ranges": face_ranges(faces, ranges), "tooth_vertex_ranges": np.asarray(teeth, np.int32),
    }  # fmt: skip


def load_ict(path: str | Path) -> dict[str, np.ndarray]:
    """ICT-FaceKit's arrays from the npz pack or a FaceXModel folder (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def source_sha256(path: str | Path) -> str:
    """SHA-256 of the npz, or of a FaceXModel folder's vertex_indices.json and OBJs (sorted by name)."""
    path = Path(path)
    h = hashlib.sha256()
    for file in sorted([*path.glob("*.obj"), path / "vertex_indices.json"]) if path.is_dir() else [path]:
        h.update(file.read_bytes())
    return h.hexdigest()


def build_main(build: Callable, description: str, argv: list[str] | None, describe: Callable[[dict], str]) -> int:
    """The command line of a transfer script: `--ict` (npz or FaceXModel/ folder), `-o` the asset; the development
    model (or $FACESMITH_FLAME); one log line with `describe(arrays)` and the file's size."""
    from ..inference.options import DEFAULTS
    from ..inference.pipeline import load_pipeline_model

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--ict", type=Path, default=Path(__file__).resolve().parents[2] / "shared/ict/ict_facekit.npz")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays = build(load_pipeline_model(DEFAULTS), args.ict)
    np.savez_compressed(args.output, **arrays)
    logging.getLogger(__name__).info("%s: %s%d bytes", args.output, describe(arrays), args.output.stat().st_size)
    return 0
