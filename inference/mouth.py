"""Teeth, gums, tongue, mouth socket and eyelashes for a fitted FLAME head, from assets/ict_mouth.npz (numpy only).

The asset (made by training/ict_mouth.py from ICT-FaceKit, MIT: see assets/ICT-FaceKit-LICENSE.txt) holds the
parts on FLAME's template, each vertex anchored to nearby FLAME vertices; a fitted head moves every part vertex
by the (Gaussian-weighted) displacement of its anchors from the template to the fitted basis, each tooth and piece
of gums or tongue by its vertices' mean (rigidly), so the mouth follows the head's size and shape. Per vertex a jaw weight (lower teeth, tongue 1; upper teeth 0; the socket in
between) skins the parts to the `jaw` and `head` bones like the skin around them, and ARKit keys (ICT's own
expressions at the parts) move them as the head's ARKit keys move the skin, scaled like those (arkit.key_scales).
FLAME's mesh only: another mesh gets no parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arkit import load_mesh_asset
from .flame.paths import PACKAGE_ROOT

FORMAT = "facesmith-ict-mouth-1"
MOUTH_FILE = PACKAGE_ROOT / "assets" / "ict_mouth.npz"
PARTS = ("mouth_socket", "gums_and_tongue", "teeth", "eyelashes_left", "eyelashes_right")
ANCHORS = 32  # FLAME vertices each part vertex follows
ANCHOR_SIGMA_M = 0.006  # their Gaussian weights' width (beyond the nearest one)
# ICT's lashes are cards drawn with a strand texture, which we do not have: a card of even opacity reads as a band of
# eyeliner (the lower lashes as a dark crescent under the eye). So they fade from root to tip, and the lower ones,
# sparse and short on most people, show at half that.
LASH_TIP_M = 0.007  # distance from the skin where a lash has faded out
LOWER_LASHES = 0.5


def rigid_mean(displacement: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each rigid group's vertices take the group's mean displacement (group −1: their own)."""
    out = displacement.copy()
    rigid = group >= 0
    if rigid.any():
        sums = np.zeros((group.max() + 1, 3))
        np.add.at(sums, group[rigid], displacement[rigid])
        out[rigid] = (sums / np.bincount(group[rigid])[:, None])[group[rigid]]
    return out


@dataclass(frozen=True)
class MouthParts:
    """The parts on one head: the mouth (socket, gums and tongue, teeth) and the lashes, as two meshes."""

    mouth_vertices: np.ndarray  # (M, 3) FLAME frame, metres
    mouth_triangles: np.ndarray  # (T, 3) into mouth_vertices
    mouth_part: np.ndarray  # (M,) index into PARTS
    mouth_jaw: np.ndarray  # (M,) 0..1 skinning weight on the jaw bone (the rest on the head bone)
    lash_vertices: np.ndarray  # (L, 3)
    lash_triangles: np.ndarray
    mouth_keys: dict[str, np.ndarray]  # ARKit name -> (M, 3) delta
    lash_keys: dict[str, np.ndarray]  # ARKit name -> (L, 3) delta
    anchor_ids: np.ndarray  # (M + L, ANCHORS) FLAME vertices each part vertex follows (mouth first, then lashes)
    anchor_weights: np.ndarray  # (M + L, ANCHORS), rows sum to 1
    lash_opacity: np.ndarray  # (L,) 0..1, times the material's alpha (lash_opacity)

    def follow(self, head_delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A head shape key's delta (V, 3) carried to the mouth and the lashes by their anchors: (M, 3), (L, 3)."""
        moved = np.einsum("nk,nkc->nc", self.anchor_weights, head_delta[self.anchor_ids])
        return moved[: len(self.mouth_vertices)], moved[len(self.mouth_vertices) :]


def lash_opacity(lashes: np.ndarray, side: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Per lash vertex (L, 3) on the template: 1 at the root fading to 0 at LASH_TIP_M from the nearest skin vertex
    (skin: (V, 3)); × LOWER_LASHES below the middle of its side's lashes (`side`: (L,) labels)."""
    gap, middle = np.zeros(len(lashes)), np.zeros(len(lashes))
    for s in np.unique(side):
        mine = lashes[side == s]
        centre = mine.mean(0)
        near = skin[np.linalg.norm(skin - centre, axis=1) < 0.6 * np.ptp(mine, axis=0).max() + LASH_TIP_M]
        gap[side == s] = np.sqrt(((mine[:, None, :] - near[None]) ** 2).sum(-1).min(1))
        middle[side == s] = centre[1]
    fade = np.clip(1.0 - gap / LASH_TIP_M, 0.0, 1.0)
    return fade * np.where(lashes[:, 1] < middle, LOWER_LASHES, 1.0)


def load_mouth(n_vertices: int, path: str | Path = MOUTH_FILE) -> dict[str, np.ndarray] | None:
    """The asset's arrays, or None when it is missing, not this format, or made for another mesh."""
    return load_mesh_asset(path, FORMAT, n_vertices)


def fitted_parts(
    asset: dict[str, np.ndarray], template: np.ndarray, basis: np.ndarray, scales: dict[str, float]
) -> MouthParts:  # fmt: skip
    """The parts moved from FLAME's template onto a fitted basis (V, 3), with their ARKit keys scaled per region
    (`scales` from arkit.key_scales: the mouth width for the mouth, the eye distance for the lashes)."""
    w, ids = asset["anchor_weights"].astype(np.float64), asset["anchor_ids"]
    moved = asset["vertices"] + rigid_mean(np.einsum("nk,nkc->nc", w, (basis - template)[ids]), asset["rigid_group"])
    part = asset["part"].astype(int)
    lash = part >= PARTS.index("eyelashes_left")
    order = np.r_[np.flatnonzero(~lash), np.flatnonzero(lash)]
    remap = np.cumsum(~lash) - 1, np.cumsum(lash) - 1
    tri = asset["triangles"]
    tri_lash = lash[tri[:, 0]]
    deltas = asset["key_deltas"].astype(np.float64)
    names = [str(n) for n in asset["key_names"]]
    return MouthParts(
        mouth_vertices=moved[~lash], mouth_triangles=remap[0][tri[~tri_lash]], mouth_part=part[~lash],
        mouth_jaw=asset["jaw_weight"][~lash].astype(np.float64), lash_vertices=moved[lash],
        lash_triangles=remap[1][tri[tri_lash]],
        mouth_keys={n: d[~lash] * scales["mouth"] for n, d in zip(names, deltas, strict=True)},
        lash_keys={n: d[lash] * scales["eyes"] for n, d in zip(names, deltas, strict=True)},
        anchor_ids=ids[order], anchor_weights=w[order],
        lash_opacity=lash_opacity(asset["vertices"][lash], part[lash], template),
    )  # fmt: skip
