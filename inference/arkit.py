"""The 52 ARKit blendshapes as shape keys for FLAME's mesh, from assets/ict_arkit.npz (numpy only).

The asset holds ICT-FaceKit's expressions (MIT, see assets/ICT-FaceKit-LICENSE.txt) moved onto FLAME's
5023-vertex template by training/ict_arkit.py: per-vertex deltas in metres, FLAME's frame. 51 of the 52
names exist; tongueOut does not (ICT has no tongue shape). Left/Right are the subject's, as in ARKit.

The deltas were transferred per vertex onto FLAME's template; a fitted head gets them scaled per region
by its size against the template (`key_scales`: eye distance for eye/brow keys, mouth width for the rest),
a first-order stand-in for full deformation transfer. They are valid only for FLAME's mesh; another mesh
(the procedural test model) gets none.

jawOpen and the `jaw` bone: ICT's jawOpen is a full shape that already contains the jaw's rotation, as
ARKit's does. It is an alternative to posing the `jaw` bone, not an addition: drive a mouth with either
jawOpen (ARKit-style animation, e.g. face capture) or the bone (FLAME's pose with its correctives), not
both at once, or the jaw opens twice. mouthClose, as in ARKit, is meant on top of jawOpen: it lifts the
lower lip back against the upper one (alone it pushes the lower lip ~4 cm up through the upper).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .flame.paths import PACKAGE_ROOT

FORMAT = "facesmith-ict-arkit-1"
ARKIT_FILE = PACKAGE_ROOT / "assets" / "ict_arkit.npz"
# Apple's ARFaceAnchor.BlendShapeLocation names, in Apple's documentation order.
ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
ARKIT_SLIDER = (0.0, 1.0)


def load_arkit_keys(n_vertices: int, path: str | Path = ARKIT_FILE) -> dict[str, np.ndarray] | None:
    """ARKit name -> (V, 3) float64 delta in metres, in ARKIT_NAMES order; None when the file is missing,
    is not this format, or was made for another mesh than one with `n_vertices` vertices."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) != FORMAT or int(z["n_vertices"]) != n_vertices:
            return None
        names, deltas = [str(n) for n in z["names"]], z["deltas"]
    if deltas.shape != (len(names), n_vertices, 3) or not set(names) <= set(ARKIT_NAMES):
        return None
    return {name: deltas[k].astype(np.float64) for k, name in enumerate(names)}


# iBUG-68 indices: eye corners (36, 39 right eye; 42, 45 left eye) and mouth corners (48, 54).
_EYES, _MOUTH = ((36, 39), (42, 45)), (48, 54)
SCALE_LIMITS = (0.75, 1.33)


def key_scales(template_landmarks: np.ndarray, head_landmarks: np.ndarray) -> dict[str, float]:
    """Per-region size of a fitted head against FLAME's template, from their (68, 3) landmarks: eye keys
    (eye*, brow*) scale with the distance between the eye centres, the rest (jaw, mouth, cheek, nose) with
    the mouth width. A first-order stand-in for deformation transfer, clipped to SCALE_LIMITS."""

    def sizes(lmk: np.ndarray) -> tuple[float, float]:
        (a, b), (c, d) = _EYES
        eyes = np.linalg.norm((lmk[c] + lmk[d]) / 2 - (lmk[a] + lmk[b]) / 2)
        return float(eyes), float(np.linalg.norm(lmk[_MOUTH[1]] - lmk[_MOUTH[0]]))

    (te, tm), (he, hm) = sizes(template_landmarks), sizes(head_landmarks)
    return {"eyes": float(np.clip(he / te, *SCALE_LIMITS)), "mouth": float(np.clip(hm / tm, *SCALE_LIMITS))}


def scaled_to_head(keys: dict[str, np.ndarray], scales: dict[str, float]) -> dict[str, np.ndarray]:
    """The keys with each delta times its region's scale (see key_scales)."""
    return {n: d * scales["eyes" if n.startswith(("eye", "brow")) else "mouth"] for n, d in keys.items()}
