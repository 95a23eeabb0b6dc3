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


def load_mesh_asset(path: str | Path, fmt: str, n_vertices: int) -> dict[str, np.ndarray] | None:
    """The arrays of a shipped .npz made for FLAME's mesh; None when it is missing, not format `fmt`, or made for
    another mesh than one with `n_vertices` vertices."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["format"]) != fmt or int(z["n_vertices"]) != n_vertices:
            return None
        return {k: z[k] for k in z.files}


def load_arkit_keys(n_vertices: int, path: str | Path = ARKIT_FILE) -> dict[str, np.ndarray] | None:
    """ARKit name -> (V, 3) float64 delta in metres, in ARKIT_NAMES order; None when the file is missing,
    is not this format, or was made for another mesh than one with `n_vertices` vertices."""
    z = load_mesh_asset(path, FORMAT, n_vertices)
    if z is None:
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


def bounded_least_squares(gram: np.ndarray, rhs: np.ndarray, lo: float = 0.0, hi: float = 1.0, sweeps: int = 500):
    """argmin_w ½ wᵀ G w − rhsᵀ w with lo ≤ w ≤ hi (G = AᵀA, rhs = Aᵀb), by projected coordinate descent: exact
    per coordinate, monotone, and enough for the ~50 keys here. rhs may be (K,) or (K, N) for N problems."""
    w = np.zeros(rhs.shape)
    diag = np.maximum(np.diag(gram), 1e-18)
    for _ in range(sweeps):
        change = 0.0
        for j in range(len(diag)):
            new = np.clip(w[j] + (rhs[j] - gram[j] @ w) / diag[j], lo, hi)
            change = max(change, float(np.max(np.abs(new - w[j]))))
            w[j] = new
        if change < 1e-7:
            break
    return w


def key_matrix(keys: dict[str, np.ndarray], mask: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The keys' names and their deltas over the masked vertices as columns, (3 × masked vertices, K)."""
    names = list(keys)
    return names, np.stack([keys[n][mask].ravel() for n in names], axis=1)


def arkit_weights(keys: dict[str, np.ndarray], delta: np.ndarray, mask: np.ndarray) -> tuple[dict[str, float], float]:
    """The ARKit weights (0..1) whose keys best reproduce a deformation `delta` (V, 3) over `mask` (bounded least
    squares), and the RMS of what they leave (mm)."""
    names, a = key_matrix(keys, mask)
    b = delta[mask].ravel()
    w = bounded_least_squares(a.T @ a, a.T @ b)
    rms = float(np.sqrt(np.mean((a @ w - b).reshape(-1, 3) ** 2 * 3)) * 1000)  # per-vertex distance RMS
    return {n: float(x) for n, x in zip(names, w, strict=True)}, rms


def psi_to_arkit(
    keys: dict[str, np.ndarray], exprdirs: np.ndarray, mask: np.ndarray, samples: int = 2000, spread: float = 0.8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:  # fmt: skip
    """A linear map from FLAME expression ψ (E,) to ARKit weights: W ≈ M ψ + c, fitted by least squares to the
    bounded ARKit fits of `samples` expressions ψ ~ N(0, spread²) (exprdirs (V, 3, E), on the same head as the
    keys). Returns M (K, E), c (K,) and its errors on fresh samples: the weights' mean absolute error against
    their bounded fit, and the vertex RMS (mm) of the mapped keys against the expressions themselves, beside the
    bounded fit's own."""
    names, a = key_matrix(keys, mask)
    e = exprdirs[mask].reshape(-1, exprdirs.shape[-1])  # (3 × masked vertices, E)
    gram, cross = a.T @ a, a.T @ e  # everything below lives in the K- and E-dimensional spaces
    rng = np.random.default_rng(seed)

    def fitted(psi: np.ndarray) -> np.ndarray:
        return bounded_least_squares(gram, cross @ psi.T)  # (K, N)

    train = rng.normal(0.0, spread, (samples, e.shape[1]))
    design = np.hstack([train, np.ones((samples, 1))])
    sol, *_ = np.linalg.lstsq(design, fitted(train).T, rcond=None)
    m, c = sol[:-1].T, sol[-1]
    test = rng.normal(0.0, spread, (samples // 4, e.shape[1]))
    w_fit, w_map = fitted(test), np.clip(m @ test.T + c[:, None], 0.0, 1.0)

    def rms_mm(w: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a @ w - e @ test.T) ** 2) * 3) * 1000)

    errors = {"weight_mae": float(np.mean(np.abs(w_map - w_fit))), "map_rms_mm": rms_mm(w_map),
              "bounded_fit_rms_mm": rms_mm(w_fit), "expression_rms_mm": rms_mm(np.zeros_like(w_fit))}  # fmt: skip
    return m, c, errors
