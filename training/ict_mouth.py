"""Mouth interior and eyelashes for FLAME heads, from ICT-FaceKit (MIT; writes assets/ict_mouth.npz).

    python -m facesmith.training.ict_mouth --ict ../shared/ict/ict_facekit.npz -o assets/ict_mouth.npz

Reads assets/ict_arkit.npz (the similarity ICT -> FLAME template and the registration made by ict_arkit.py).

1. ICT's parts `mouth_socket`, `gums_and_tongue`, `teeth`, `eyelashes_left/right` (ICT's mean identity), moved by
   the same similarity into FLAME's frame, then from ICT's face shape to FLAME's template: each part vertex
   is anchored to its K nearest FLAME vertices (registered positions), and the template-minus-registered
   displacement of those (Gaussian weights: a smooth field) is added; each tooth and each piece of gums and
   tongue takes its vertices' mean, so it moves rigidly and keeps its shape. A fitted head moves them again
   the same way, by its own basis-minus-template displacement (inference/mouth.py). Teeth, gums and tongue then
   drop by TEETH_DROP_M (the socket stays with the lips): see there why.
2. Per vertex a jaw weight: how far ICT's jawOpen moves it against how far it moves the lower incisors (lower
   teeth, tongue and lower gums 1, upper teeth and gums 0, the socket in between); lashes 0.
   Each tooth's root (beyond CROWN of its height from the biting edge) is pressed back to the gum line.
3. ARKit keys for the parts: ICT's own expression deltas at the parts' vertices (so teeth, tongue and lashes
   move with jawOpen, eyeBlink, ... exactly as ICT's face does), times the similarity's s·R; the jaw's
   rotation is in them, as in the skin's jawOpen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..inference.arkit import ARKIT_FILE, ARKIT_NAMES
from ..inference.flame.model import FlameModel
from ..inference.mouth import ANCHOR_SIGMA_M, ANCHORS, FORMAT, PARTS, rigid_mean
from .ict_arkit import MERGED, arkit_name, triangulate
from .ict_source import build_main, load_ict, source_sha256

log = logging.getLogger(__name__)


def anchors(points: np.ndarray, flame: np.ndarray, k: int = ANCHORS) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest FLAME vertices and Gaussian weights (σ = ANCHOR_SIGMA_M beyond the nearest; rows
    sum to 1): a smooth field, so neighbouring part vertices move alike."""
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(flame).query(points, k=k)
    w = np.exp(-0.5 * ((dist - dist[:, :1]) / ANCHOR_SIGMA_M) ** 2)
    return idx.astype(np.int32), (w / w.sum(1, keepdims=True)).astype(np.float32)


def rigid_groups(ict: dict, names: list[str], faces: np.ndarray, ids: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Per part vertex the piece that moves as one (each tooth; each connected piece of gums and tongue), −1 for
    the socket and the lashes (they follow the skin vertex by vertex)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    group = np.full(len(ids), -1, np.int32)
    lo = ict["part_vertex_ranges"][names.index("teeth")][0]
    start = 0
    for a, b in ict["tooth_vertex_ranges"]:
        where = (ids >= a) & (ids < b)
        group[where] = start
        start += 1
    gums = part == PARTS.index("gums_and_tongue")
    edges = faces[gums[faces[:, 0]]]
    n = len(ids)
    adj = sp.coo_matrix((np.ones(len(edges) * 3), (edges.ravel(), np.roll(edges, 1, axis=1).ravel())), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    group[gums] = start + np.unique(label[gums], return_inverse=True)[1]
    assert (group[part == PARTS.index("teeth")] >= 0).all(), lo
    return group


def stretched(v: np.ndarray, delta: np.ndarray, triangles: np.ndarray, limit: float = 2.0) -> np.ndarray:
    """Triangles with an edge that jawOpen stretches beyond `limit` × (ICT's gums are joined upper to lower by a
    web of thin triangles that an open jaw draws into long streaks across the mouth)."""
    ratio = np.ones(len(triangles))
    for a, b in ((0, 1), (1, 2), (2, 0)):
        rest = np.linalg.norm(v[triangles[:, a]] - v[triangles[:, b]], axis=1)
        moved = np.linalg.norm((v + delta)[triangles[:, a]] - (v + delta)[triangles[:, b]], axis=1)
        ratio = np.maximum(ratio, moved / np.maximum(rest, 1e-6))
    return ratio > limit


def jaw_weights(v: np.ndarray, jaw_open: np.ndarray, part: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Skinning weight on the jaw bone per part vertex: 1 for the teeth jawOpen carries (the lower ones), 0 for the
    others; for the gums, tongue and socket, how far jawOpen moves a vertex against how far the jaw's own motion
    (a rotation fitted to the lower teeth) would carry it; 0 for the lashes."""
    from .ict_arkit import umeyama

    motion = np.linalg.norm(jaw_open, axis=1)
    jaw = np.zeros(len(v))
    teeth = (part == PARTS.index("teeth")) & (group >= 0)
    moving = np.bincount(group[teeth], weights=motion[teeth], minlength=group.max() + 1)
    moving = moving / np.maximum(np.bincount(group[teeth], minlength=group.max() + 1), 1) > 0.005
    jaw[teeth] = moving[group[teeth]]
    lower = teeth & (jaw > 0)
    s, rot, t = umeyama(v[lower], v[lower] + jaw_open[lower])
    carried = np.linalg.norm(v @ (s * rot).T + t - v, axis=1)
    soft = np.isin(part, [PARTS.index("mouth_socket"), PARTS.index("gums_and_tongue")])
    jaw[soft] = np.clip(motion[soft] / np.maximum(carried[soft], 1e-6), 0.0, 1.0)
    return jaw


# Teeth, gums and tongue sit this much lower on FLAME's template than the anchoring puts them (metres, along −y;
# all of them, so the bite and the tongue under the teeth stay as ICT has them; after the jaw weights, which are
# where ICT's jawOpen moves them). Placed as ICT places them under its lips, the upper incisors' edge is 1.4 mm
# under the template's upper inner lip, and FLAME's fitted smiles part the lips about half as far as the photos
# (bench/mouth.py: median 0.50 × on even-numbered people) and lift the upper lip less: the render showed a thin row
# of upper teeth over a near-black band (the tongue and lower gums, in the lips' shade) where the photo shows a row
# of teeth. Chosen on even-numbered people (bench/mouth.py, the first 12 open mouths): dropped 0 / 3 / 4.5 / 6 mm,
# the teeth-share error was 0.273 / 0.204 / 0.203 / 0.214 and the lightness error 20.2 / 13.1 / 12.2 / 11.7 L*.
# No teeth show through closed lips at the photo's camera or turned 45° (ray-cast on neutral portraits).
TEETH_DROP_M = 0.0045
CROWN = 0.45  # share of a tooth's height kept from its biting edge: the rest (the root) is pressed into the gum


def without_roots(v: np.ndarray, part: np.ndarray, group: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """ICT's teeth have their roots, which reach past the gums (ICT's skin hides them; FLAME's wider-opening
    mouth would show them as spikes): each tooth's vertices beyond CROWN of its height from the biting edge are
    moved back to that height."""
    out = v.copy()
    for g in np.unique(group[(part == PARTS.index("teeth")) & (group >= 0)]):
        idx = np.flatnonzero(group == g)
        y = v[idx, 1]
        if jaw[idx].mean() > 0.5:  # lower tooth: edge on top, root below
            out[idx, 1] = np.maximum(y, y.max() - CROWN * (y.max() - y.min()))
        else:
            out[idx, 1] = np.minimum(y, y.min() + CROWN * (y.max() - y.min()))
    return out


def build(model: FlameModel, ict_path: Path, arkit_path: Path = ARKIT_FILE) -> dict[str, np.ndarray]:
    ict = load_ict(ict_path)
    with np.load(arkit_path, allow_pickle=False) as z:
        s, rot, t = float(z["similarity_scale"]), z["similarity_rotation"], z["similarity_translation"]
        corners, bary, valid = z["ict_triangles"], z["bary"].astype(np.float64), z["valid"]
    lin = s * rot
    neutral = ict["neutral"].astype(np.float64)
    ict_v = neutral @ lin.T + t
    # The registered FLAME template (ICT's shape in FLAME's mesh), from the correspondence: where each valid FLAME
    # vertex sits on ICT's surface. Invalid ones (eyeballs, back of the head) keep the template's position.
    template = model.v_template.astype(np.float64)
    registered = np.where(valid[:, None], (ict_v[corners] * bary[..., None]).sum(1), template)

    names = [str(n) for n in ict["part_names"]]
    vr, fr = ict["part_vertex_ranges"], ict["part_face_ranges"]
    vertices, triangles, part_of, ict_ids = [], [], [], []
    offset = 0
    for p, name in enumerate(PARTS):
        i = names.index(name)
        lo, hi = vr[i]
        tri = triangulate(ict["faces"][fr[i][0] : fr[i][1]])
        # The socket's rim faces reach into the face part's lip vertices: that strip is left out (FLAME's lips
        # are not ICT's; the socket is drawn one-sided from inside).
        tri = tri[((tri >= lo) & (tri < hi)).all(axis=1)] - lo
        vertices.append(ict_v[lo:hi])
        triangles.append(tri + offset)
        part_of.append(np.full(hi - lo, p, np.int8))
        ict_ids.append(np.arange(lo, hi))
        offset += hi - lo
    v = np.concatenate(vertices)
    ids = np.concatenate(ict_ids)
    idx, w = anchors(v, registered)
    part = np.concatenate(part_of)
    group = rigid_groups(ict, names, np.concatenate(triangles), ids, part)
    v_template = v + rigid_mean(np.einsum("nk,nkc->nc", w, (template - registered)[idx]), group)

    ex_names = [str(n) for n in ict["expression_names"]]
    deltas = ict["expression_deltas"].reshape(len(ex_names), -1, 3)

    def transfer(name: str) -> np.ndarray:
        return deltas[ex_names.index(name)][ids].astype(np.float64) @ lin.T

    keys: dict[str, np.ndarray] = {}
    merged_parts = {p for pair in MERGED.values() for p in pair}
    for name, ok in zip(ex_names, ict["expression_in_config"], strict=True):
        if ok and name not in merged_parts:
            keys[arkit_name(name)] = transfer(name)
    for name, (left, right) in MERGED.items():
        keys[name] = transfer(left) + transfer(right)
    key_names = [n for n in ARKIT_NAMES if n in keys]

    jaw = jaw_weights(v_template, keys["jawOpen"], part, group)  # where ICT's jawOpen moves them: before the drop
    v_template[np.isin(part, [PARTS.index("teeth"), PARTS.index("gums_and_tongue")]), 1] -= TEETH_DROP_M
    v_template = without_roots(v_template, part, group, jaw)
    tri_all = np.concatenate(triangles)
    webbing = stretched(v_template, keys["jawOpen"], tri_all) & (part[tri_all[:, 0]] == PARTS.index("gums_and_tongue"))
    log.info("%d part vertices, %d triangles (%d webbing triangles between the gums dropped)", len(v_template),
             len(tri_all) - webbing.sum(), webbing.sum())  # fmt: skip
    return {
        "format": np.array(FORMAT),
        "parts": np.array(PARTS),
        "vertices": v_template.astype(np.float32),
        "triangles": tri_all[~webbing].astype(np.int32),
        "part": part,
        "rigid_group": group,
        "anchor_ids": idx,
        "anchor_weights": w,
        "jaw_weight": jaw.astype(np.float32),
        "key_names": np.array(key_names),
        "key_deltas": np.stack([keys[n] for n in key_names]).astype(np.float16),
        "n_vertices": np.array(model.n_vertices, np.int32),
        "ict_sha256": np.array(source_sha256(ict_path)),
    }


def main(argv: list[str] | None = None) -> int:
    return build_main(build, __doc__.splitlines()[0], argv, lambda arrays: "")


if __name__ == "__main__":
    raise SystemExit(main())
