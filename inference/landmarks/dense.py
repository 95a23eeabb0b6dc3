"""Dense FLAME landmarks from a learned network (after Wood et al. 2022).

A compact CNN, trained by `facesmith train` on `facesmith synth` renders only, predicts where several
hundred FLAME vertices (face, jaw line, cheeks, forehead, ears, a few on the scalp and neck; hidden ones too)
project in a face crop, each with an uncertainty σ. The landmarks are FLAME vertices, so the fit needs no
hand-made correspondence. It runs on onnxruntime (CUDA when asked for and offered, else CPU).

The crop: the box of 68 iBUG-like points (a detector's on the first pass; the network's own 68 rows of the
dense set on the second), centre and side `crop_scale` × its longer edge, resampled to `input_size`². The
network sees exactly this crop in training (with jitter), so the second pass removes the detector's bias.
Measured on 842 val renders (mirroring on): where the detector's box is on the face (822), the point
error is 2.91 % of the face after one pass, 2.77 % after two, 2.73 % after three (2.72 after five: the box
converges) and 2.67 % on the exact crop; nine jittered crops averaged by σ give 2.71 % at 4× the network's
time; a fixed scale correction of the box (it runs 2 % small), 2.75 %. None of it helps bench/identity.py
(20 ICT heads, 1 / 3 photos ÷ the mean face: two passes 0.956 / 0.896, three 0.958 / 0.898, nine crops
0.957 / 0.902, even the box of ICT's own 68 points 0.957 / 0.902), so two passes stay: the crop does not limit
the fit. The rest of the gap in bench/dense.py's mean (5.10 vs 2.80 %) is the 20 images where the detector's
68 points are not on the face at all (profiles, backs of heads, hands, false faces): no crop rule recovers those.

The .onnx file carries a JSON `DenseSpec` in its metadata: the vertex ids, the crop rule and a hash of the
FLAME basis it was trained for. Inference refuses a FLAME model with another basis (`check_model`).

Test-time mirroring (on by default): each crop is also run flipped left-right (one batch of two); the
flipped crop's points, x negated back, are where the *mirror images* of the landmarks are, so each landmark
gets a second estimate from the flipped prediction at its mirror position, and the two are averaged. FLAME's
template is nearly but not exactly symmetric (a vertex's mirror image lies a median 1.2 mm from the nearest
vertex) and the landmark set is not symmetric, so the mirror position is not a landmark: the estimate is
interpolated from the 8 landmarks nearest it on the template (moving least squares with an affine model; a
landmark within 0.1 mm of the mirror position is taken as is) — `mirror_weights`. On 300 synthetic validation
renders (exact crops, one pass) the point error goes from 3.33 % to 3.18 % of the face (visible points 2.50 ->
2.40 %); nearest-partner pairs within 2 mm instead of the interpolation gave about half the gain. Through the
detector's crop and both passes (bench/dense.py): 4.53 -> 4.42 % (all points; visible 3.91 -> 3.92 %);
bench/identity.py (20 ICT heads) 1 photo 0.961 -> 0.956 × the mean face, 3 photos 0.905 -> 0.896. It doubles
the network's time (a batch of two per pass, both passes: mirroring only the second pass kept two thirds of
the gain).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendError
from ..flame.forward import flame_forward, landmarks68
from ..flame.model import FlameModel
from ..flame.paths import PACKAGE_ROOT
from ..options import DEVICES

DENSE_MODEL = PACKAGE_ROOT / "assets" / "dense_landmarks.onnx"
METADATA_KEY = "facesmith_dense"
N_FACE_POINTS = 420  # farthest-point samples on the face (NoW's 95 mm around the nose tip, no eyeballs)
N_REST_POINTS = 80  # ... and over the rest of the head and neck
CROP_SCALE = 1.6  # crop side ÷ the longer edge of the 68 points' box
INPUT_SIZE = 128
CROP_PASSES = 2  # the second crop comes from the network's own 68 rows; a third: 0.03 points less error (docstring)
SIGMA_FLOOR = 0.004  # σ below this (fraction of the crop side, 0.5 px at 128²) is not believed
TEST_TIME_MIRROR = True  # average each pass with the flipped crop's prediction (see the module's docstring)
MIRROR_NEIGHBOURS = 8  # template neighbours the mirror estimate is interpolated from
MIRROR_SNAP = 1e-4  # metres: a landmark this close to a mirror position is its partner, uninterpolated
MIRROR_RIDGE = 1e-3  # on the interpolation's slopes (validation error the same as 1e-7, weights tamer)


def farthest_points(points: np.ndarray, n: int, first: int) -> np.ndarray:
    """Indices of `n` points spread by greedy farthest-point sampling, starting from `first`."""
    chosen = [first]
    dist = np.linalg.norm(points - points[first], axis=1)
    for _ in range(min(n, len(points)) - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.array(chosen, np.int64)


def ibug_vertices(model: FlameModel) -> np.ndarray:
    """The vertex nearest each of the 68 iBUG landmarks on the neutral frontal head (jaw line at yaw 0)."""
    out = flame_forward(model)
    lm = landmarks68(model, out)[0]
    v = out.vertices[0]
    return np.array([int(np.argmin(np.linalg.norm(v - p, axis=1))) for p in lm], np.int64)


def select_vertices(
    model: FlameModel, n_face: int = N_FACE_POINTS, n_rest: int = N_REST_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The dense landmark set: (vertex ids (L,), rows of the 68 iBUG vertices in it (68,)).

    The 68 iBUG vertices come first (the crop and the face size need them), then farthest-point samples over
    the face, then over the rest of the head; eyeballs are left out (the iris is the detector's job)."""
    from ..flame.regions import face_region

    t = np.asarray(model.v_template, np.float64)
    face = face_region(model)
    eyeballs = model.lbs_weights[:, 3:5].sum(axis=1) > 0.5
    rest = ~face & ~eyeballs
    ibug = ibug_vertices(model)
    face_ids = np.flatnonzero(face)
    rest_ids = np.flatnonzero(rest)
    nose = int(ibug[30])
    face_pick = face_ids[farthest_points(t[face_ids], n_face, int(np.argmin(np.abs(face_ids - nose))))]
    rest_pick = rest_ids[farthest_points(t[rest_ids], n_rest, 0)]
    ids = list(dict.fromkeys([*ibug.tolist(), *face_pick.tolist(), *rest_pick.tolist()]))
    ids_arr = np.array(ids, np.int64)
    rows = np.array([ids.index(int(i)) for i in ibug], np.int64)
    return ids_arr, rows


def mirror_weights(template: np.ndarray, vertex_ids: np.ndarray, k: int = MIRROR_NEIGHBOURS) -> np.ndarray:
    """(L, L) float32 W: row i interpolates, from values at the landmarks' template positions t, the value at
    landmark i's mirror position (−x, y, z): moving least squares with an affine model over the k landmarks
    nearest it (Gaussian weights, scale the second-nearest distance). Each row sums to 1, W reproduces a field
    affine on the template up to the ridge (W·t = mirror(t) within 1.5 mm on FLAME's 554 landmarks, median
    0.001 mm), and W·W ≈ I: an involution up to the interpolation (the exact left-right permutation where the
    set is symmetric)."""
    t = np.asarray(template, np.float64)[np.asarray(vertex_ids)]
    target = t * np.array([-1.0, 1.0, 1.0])
    count = len(t)
    k = min(k, count)
    d2 = ((target[:, None, :] - t[None, :, :]) ** 2).sum(-1)  # (L, L) squared distances
    near = np.argsort(d2, axis=1)[:, :k]
    weights = np.zeros((count, count), np.float64)
    for i in range(count):
        nb = near[i]
        dist = np.sqrt(d2[i, nb])
        if dist[0] < MIRROR_SNAP:  # a landmark is there: take it (the exact permutation on a symmetric set)
            weights[i, nb[0]] = 1.0
            continue
        scale = max(dist[min(1, k - 1)], 1e-4)
        w = np.exp(-((dist / scale) ** 2))
        offsets = t[nb] - target[i]
        design = np.c_[np.ones(k), offsets]  # affine in template coordinates, centred at the target
        # The neighbours lie near a surface, so the slope along its normal is ill-posed: a small ridge on the
        # slopes (relative to the neighbours' spread) keeps the weights from cancelling wildly.
        spread = float(w @ (offsets**2).sum(1))
        normal = design.T @ (w[:, None] * design) + MIRROR_RIDGE * spread * np.diag([0.0, 1.0, 1.0, 1.0])
        weights[i, nb] = np.linalg.solve(normal, design.T * w)[0]  # the intercept: the value at the target
    return weights.astype(np.float32)


def mirrored_estimate(
    units: np.ndarray, sigma: np.ndarray, flipped_units: np.ndarray, flipped_sigma: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Combine a crop's prediction (L, 2) crop units, σ (L,) with its flipped crop's: the flipped points with x
    negated back, carried to the mirror positions by `weights` (mirror_weights), averaged with the direct ones;
    σ the root mean square of the two (their errors are strongly correlated, so σ is not divided by √2 and
    the fit's tuned noise scale keeps its meaning)."""
    back = flipped_units * np.array([-1.0, 1.0], np.float32)
    mirror_points = weights @ back
    mirror_var = np.maximum(weights @ flipped_sigma**2, SIGMA_FLOOR**2)
    return (units + mirror_points) / 2, np.sqrt((sigma**2 + mirror_var) / 2)


def basis_hash(model: FlameModel, n_shape: int) -> str:
    """SHA-256 of what the network's labels depend on: the mesh, its template and the first n_shape
    shape components (float32 bytes, so a pickle and an .npz of the same model agree)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(model.faces, np.int32).tobytes())
    h.update(np.ascontiguousarray(model.v_template, np.float32).tobytes())
    h.update(np.ascontiguousarray(np.asarray(model.shapedirs)[:, :, :n_shape], np.float32).tobytes())
    return h.hexdigest()


def crop_box(points68: np.ndarray, scale: float = CROP_SCALE) -> tuple[float, float, float]:
    """(centre x, centre y, side) in pixels of the square crop around 68 points."""
    lo, hi = points68.min(axis=0), points68.max(axis=0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float(scale * max(hi[0] - lo[0], hi[1] - lo[1], 1.0))


def crop_matrix(box: tuple[float, float, float], size: int) -> np.ndarray:
    """2×3 affine taking image pixels to crop pixels (pixel centres at integers in both)."""
    cx, cy, side = box
    s = size / side
    return np.array([[s, 0.0, size / 2 - 0.5 - s * cx], [0.0, s, size / 2 - 0.5 - s * cy]], np.float64)


def to_crop_units(points_px: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """Image pixels -> crop units: (0, 0) the crop's centre, ±1 its edges."""
    cx, cy, side = box
    return (points_px - np.array([cx, cy])) / (side / 2)


def from_crop_units(units: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    cx, cy, side = box
    return units * (side / 2) + np.array([cx, cy])


def crop_image(rgb: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The crop as the network's input: (3, size, size) float32 in 0..1 (RGB), outside the photo black."""
    import cv2

    patch = cv2.warpAffine(rgb, crop_matrix(box, size), (size, size), flags=cv2.INTER_AREA
                           if box[2] > size else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    return np.ascontiguousarray(patch.transpose(2, 0, 1), np.float32) / 255.0


@dataclass(frozen=True)
class DenseSpec:
    """What a trained network predicts and how its input is made; stored as JSON in the .onnx metadata."""

    vertex_ids: tuple[int, ...]
    ibug_rows: tuple[int, ...]
    input_size: int
    crop_scale: float
    n_shape: int  # β components of its shape head (0: none)
    basis_hash: str
    n_vertices: int
    trained_on: str = ""  # one line on the data and the run

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> DenseSpec:
        d = json.loads(text)
        d["vertex_ids"], d["ibug_rows"] = tuple(d["vertex_ids"]), tuple(d["ibug_rows"])
        return DenseSpec(**d)


@dataclass(frozen=True)
class DensePrediction:
    points: np.ndarray  # (L, 2) image pixels
    sigma: np.ndarray  # (L,) pixels
    shape: np.ndarray  # (n_shape,) the network's own β guess (not used by the fit by default)
    box: tuple[float, float, float]  # the last crop


def choose_providers(device: str, available: list[str]) -> list[str]:
    """onnxruntime providers for a device choice; "cuda" without CUDA is an error that says how to get it."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not has_cuda:
        raise BackendError(
            "CUDA was asked for, but this onnxruntime offers only "
            f"{', '.join(p.replace('ExecutionProvider', '') for p in available) or 'nothing'}; install the GPU "
            "build (`./setup.sh --gpu` for the command line) with an NVIDIA driver and the CUDA 12 / cuDNN 9 "
            "runtimes, or choose device cpu or auto"
        )
    if device == "cuda" or (device == "auto" and has_cuda):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class DenseLandmarker:
    """A trained dense-landmark network on onnxruntime; one per run, used for many photos."""

    def __init__(self, path: str | Path = DENSE_MODEL, device: str = "auto", threads: int = 0,
                 mirror: bool | None = None) -> None:  # fmt: skip
        """`mirror`: test-time mirroring (default TEST_TIME_MIRROR); it starts once `check_model` has given the
        template the mirror positions come from."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not available ({exc}); dense landmarks need it") from None
        path = Path(path)
        if not path.is_file():
            raise BackendError(f"{path}: dense-landmark network not found")
        self.providers = choose_providers(device, ort.get_available_providers())
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=self.providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise BackendError(f"{path}: not a Facesmith dense-landmark network (no {METADATA_KEY} metadata)")
        self.spec = DenseSpec.from_json(meta[METADATA_KEY])
        self.path = path
        self.mirror = TEST_TIME_MIRROR if mirror is None else mirror
        self.mirror_map: np.ndarray | None = None  # mirror_weights, set by check_model

    def check_model(self, model: FlameModel) -> None:
        """Refuse a FLAME model whose mesh or shape basis differs from the one the network learned."""
        spec = self.spec
        if model.n_vertices != spec.n_vertices or model.n_shape < spec.n_shape:
            raise BackendError(
                f"{self.path.name} was trained for a FLAME mesh of {spec.n_vertices} vertices and {spec.n_shape} "
                f"shape components; {model.source} has {model.n_vertices} and {model.n_shape}"
            )
        got = basis_hash(model, spec.n_shape)
        if got != spec.basis_hash:
            raise BackendError(
                f"{self.path.name} was trained for another FLAME basis (hash {spec.basis_hash[:12]}, this model "
                f"{got[:12]}: {model.source}); use FLAME 2023 Open or choose the mediapipe/dlib landmarks"
            )
        if self.mirror_map is None:
            self.mirror_map = mirror_weights(model.v_template, np.array(spec.vertex_ids))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 3, S, S) crops -> crop-unit points (N, L, 2), σ in crop units (N, L), β (N, n_shape)."""
        points, log_sigma, shape = self.session.run(None, {"image": batch.astype(np.float32)})
        return points, np.maximum(np.exp(log_sigma), SIGMA_FLOOR), shape

    def run_crop(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One (3, S, S) crop -> points (L, 2) crop units, σ (L,) crop units, β; averaged with the flipped crop's
        prediction when mirroring is on (and check_model has run)."""
        if not (self.mirror and self.mirror_map is not None):
            units, sigma, shape = self.run(crop[None])
            return units[0], sigma[0], shape[0]
        units, sigma, shape = self.run(np.stack([crop, crop[:, :, ::-1]]))
        points, sig = mirrored_estimate(units[0], sigma[0], units[1], sigma[1], self.mirror_map)
        return points, sig, shape[0]  # β: the direct crop's (a flipped head's β is not the same β)

    def predict(self, rgb: np.ndarray, points68: np.ndarray, passes: int = CROP_PASSES) -> DensePrediction:
        """Dense landmarks of the face whose 68 detector points are given (image pixels)."""
        spec = self.spec
        box = crop_box(points68, spec.crop_scale)
        for k in range(passes):
            units, sigma, shape = self.run_crop(crop_image(rgb, box, spec.input_size))
            points = from_crop_units(units, box)
            sigma_px = sigma * box[2] / 2
            if k + 1 < passes:
                box = crop_box(points[list(spec.ibug_rows)], spec.crop_scale)
        return DensePrediction(points, sigma_px, shape, box)
