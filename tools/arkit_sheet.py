"""A contact sheet to look at the ICT -> FLAME ARKit transfer: for common ARKit shapes, ICT-FaceKit's own head
(left) beside FLAME's template with the shipped keys, teeth, tongue and lashes (right), front and 3/4 views.

    .venv/bin/python tools/arkit_sheet.py -o arkit_sheet.png [--ict ../shared/ict/ict_facekit.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facesmith.inference.arkit import load_arkit_keys
from facesmith.inference.flame.forward import vertex_normals
from facesmith.inference.mouth import fitted_parts, load_mouth
from facesmith.inference.options import DEFAULTS
from facesmith.inference.pipeline import load_pipeline_model
from facesmith.training.ict_arkit import MERGED, arkit_name, triangulate
from facesmith.training.synth.raster import rasterize

SHAPES = ("jawOpen", "mouthSmileLeft", "mouthFunnel", "mouthPucker", "eyeBlinkLeft", "browInnerUp", "browDownLeft",
          "cheekPuff", "mouthFrownRight", "noseSneerLeft")  # fmt: skip
SKIN, MOUTH, TEETH, LASH = (0.78, 0.62, 0.52), (0.45, 0.12, 0.12), (0.9, 0.88, 0.8), (0.05, 0.04, 0.03)
ICT_PARTS = {"face": SKIN, "head_and_neck": SKIN, "mouth_socket": MOUTH, "gums_and_tongue": MOUTH, "teeth": TEETH,
             "eyelashes_left": LASH, "eyelashes_right": LASH, "eyeball_left": (0.85, 0.85, 0.85),
             "eyeball_right": (0.85, 0.85, 0.85)}  # fmt: skip


def draw(v: np.ndarray, tri: np.ndarray, colours: np.ndarray, yaw_deg: float, size: int = 256) -> np.ndarray:
    """Flat-lit render (BGR uint8) of a mesh in FLAME's frame (metres), centred on the face."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    p = (v - np.array([0.0, -0.02, 0.0])) @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    scale = size / 0.22
    xy = np.stack([size / 2 + scale * p[:, 0], size / 2 - scale * p[:, 1]], axis=1)
    ras = rasterize(xy, p[:, 2], tri, size, size)
    normals = vertex_normals(p, tri)
    t, b = ras.pixel_triangle, ras.pixel_bary
    n = sum(normals[tri[t, k]] * b[:, k, None] for k in range(3))
    col = sum(colours[tri[t, k]] * b[:, k, None] for k in range(3))
    img = np.full((size * size, 3), 0.5)
    img[ras.pixels] = col * np.clip(0.25 + 0.75 * np.abs(n[:, 2:3]), 0, 1)
    return np.round(img.reshape(size, size, 3)[..., ::-1] * 255).astype(np.uint8)


def ict_head(ict: dict, lin: np.ndarray, t: np.ndarray):
    """ICT's mean head in FLAME's frame: vertices, triangles of the drawn parts, colours, expression deltas."""
    names = [str(n) for n in ict["part_names"]]
    keep = [i for i, n in enumerate(names) if n in ICT_PARTS]
    tri = triangulate(np.concatenate([ict["faces"][slice(*ict["part_face_ranges"][i])] for i in keep]))
    colours = np.zeros((len(ict["neutral"]), 3))
    for i in keep:
        colours[slice(*ict["part_vertex_ranges"][i])] = ICT_PARTS[names[i]]
    v = ict["neutral"].astype(np.float64) @ lin.T + t
    deltas = ict["expression_deltas"].reshape(len(ict["expression_names"]), -1, 3).astype(np.float64)
    return v, tri, colours, {str(n): d @ lin.T for n, d in zip(ict["expression_names"], deltas, strict=True)}


def ict_delta(deltas: dict[str, np.ndarray], name: str) -> np.ndarray:
    merged = next((pair for key, pair in MERGED.items() if key == name), None)
    if merged:
        return deltas[merged[0]] + deltas[merged[1]]
    return next(d for n, d in deltas.items() if arkit_name(n) == name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ict", type=Path, default=Path(__file__).resolve().parents[2] / "shared/ict/ict_facekit.npz")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    model = load_pipeline_model(DEFAULTS)
    keys = load_arkit_keys(model.n_vertices)
    asset = load_mouth(model.n_vertices)
    with np.load(Path(__file__).resolve().parents[1] / "assets/ict_arkit.npz") as z:
        lin = float(z["similarity_scale"]) * z["similarity_rotation"]
        shift = z["similarity_translation"]
    with np.load(args.ict) as z:
        ict = {k: z[k] for k in z.files}
    iv, itri, icol, ideltas = ict_head(ict, lin, shift)
    tpl = model.v_template
    parts = fitted_parts(asset, tpl, tpl, {"eyes": 1.0, "mouth": 1.0})
    nf, nm = len(tpl), len(parts.mouth_vertices)
    ftri = np.concatenate([model.faces[~model.eyeball_triangles()], parts.mouth_triangles + nf,
                           parts.lash_triangles + nf + nm]).astype(np.int64)  # fmt: skip
    part_col = np.array([MOUTH, MOUTH, TEETH])[np.minimum(parts.mouth_part, 2)]
    fcol = np.concatenate([np.tile(SKIN, (nf, 1)), part_col, np.tile(LASH, (len(parts.lash_vertices), 1))])
    rows = []
    for name in SHAPES:
        ict_v = iv + ict_delta(ideltas, name)
        flame_v = np.concatenate([tpl + keys[name], parts.mouth_vertices + parts.mouth_keys[name],
                                  parts.lash_vertices + parts.lash_keys[name]])  # fmt: skip
        tiles = [draw(ict_v, itri, icol, yaw) for yaw in (0, 35)] + [draw(flame_v, ftri, fcol, yaw) for yaw in (0, 35)]
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    cv2.imwrite(str(args.output), np.concatenate(rows, axis=0))
    print(f"{args.output}: ICT (front, 35°) | FLAME with the shipped keys (front, 35°) for {len(SHAPES)} shapes")


if __name__ == "__main__":
    main()
