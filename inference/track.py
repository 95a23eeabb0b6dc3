"""Footage of a face -> per-frame FLAME expression, jaw, head pose and gaze on a fixed identity (numpy only).

Each frame: landmarks from the pipeline's detector (the dense network on the detector's crop; when the detector
loses the face, the network alone on the previous frame's crop, so short losses are bridged; either way, when the
network's own uncertainty says no face is there, the frame is lost, not tracked), then the landmark
fit with the head's β held fixed, and blinks from the detector's own lid points (eye aspect ratio), started from the previous frame's solution (a few Levenberg–Marquardt steps),
the focal length fitted on the first frame and then kept (one camera; its distance per frame, or held per take:
TrackOptions.scale). Each frame's fitted camera placement becomes the head's translation in front of that one
camera (take_registration), keyed on the rig's root bone: the projected head follows the face in the video instead
of only turning about the neck. Afterwards the curves
are smoothed by a centred Savitzky–Golay filter (quadratic, `smooth_frames` wide): offline and symmetric, so it
removes frame-to-frame jitter without delaying fast mouth motion; frames where no face was found take values
interpolated between their neighbours and are listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import Camera
from .errors import CancelledError, FacesmithError, NoFaceError
from .fit import Observation
from .fit.gaze import fit_gaze
from .fit.problem import PhotoState, Problem, scale_index
from .fit.solver import initial_state, solve
from .flame.model import FlameModel
from .images import PHOTO_SUFFIXES, load_photo
from .landmarks.detect import FaceLandmarks, LandmarkDetector, dense_face, landmark_spread, resolve_backends
from .options import ANIMATION_KEYS, FACE_SPREAD_MAX, FitOptions, PipelineOptions, TrackOptions

Progress = Callable[[float, str], None]
BLINK_CLOSED = 0.25  # eye aspect ratio of a closed eye, share of the open one (lashes keep a gap)
BLINK_DEADZONE = 0.3  # closure weights below this are taken as open


class FootageError(FacesmithError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Tracked:
    """The performance: one row per tracked frame."""

    fps: float  # of the tracked frames (the footage's rate ÷ stride)
    frame_numbers: np.ndarray  # (N,) in the source
    shape: np.ndarray  # β, fixed
    expression: np.ndarray  # (N, E)
    pose: np.ndarray  # (N, 5, 3) axis-angle: global, neck (0), jaw, eyes
    found: np.ndarray  # (N,) bool: a face was found (else interpolated)
    image_size: tuple[int, int]
    eyelids: np.ndarray | None = None  # (N, 2) blink weights 0..1 (subject's left, right) for eyelid_L / eyelid_R
    # The head's root translation (N, 3), metres in FLAME's frame, added after the global rotation about the root
    # joint, in front of `camera`, the take's one camera (take_registration): so posed, the head projects where the
    # face is in each frame. None: a performance without placement (the head stays where its rig put it).
    translation: np.ndarray | None = None
    camera: Camera | None = None

    @property
    def lost(self) -> list[int]:
        return [int(n) for n in self.frame_numbers[~self.found]]

    def lost_message(self, name: str) -> str | None:
        """One warning line naming the frames without a face (as ranges), or None when every frame had one."""
        if not self.lost:
            return None
        return (f"{name}: no face in {len(self.lost)} frame(s), {frame_ranges(self.lost)}: interpolated between "
                "their neighbours")  # fmt: skip


def frame_ranges(numbers: list[int]) -> str:
    """Sorted frame numbers as ranges: [3, 4, 5, 9] -> "3-5, 9"."""
    parts, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def footage_frames(source: str | Path, options: TrackOptions) -> tuple[float, int, Iterator[tuple[int, np.ndarray]]]:
    """(frame rate, frame count after start/end/stride, frames (number, RGB uint8)) of a video file or a folder
    of images (sorted by name). Errors name the file and the reason before any frame is read."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        picked = files[options.start : options.end : options.stride]
        if not picked:
            raise FootageError(source, "no frames (images) in this folder for the chosen range")

        def images() -> Iterator[tuple[int, np.ndarray]]:
            for k, path in enumerate(picked):
                yield options.start + k * options.stride, load_photo(path).rgb

        return options.fps, len(picked), images()
    if not source.is_file():
        raise FootageError(source, "no such file or folder")
    import cv2

    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise FootageError(source, "not a video OpenCV can read")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or options.fps
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    end = total if options.end is None else min(options.end, total)
    count = len(range(options.start, end, options.stride))
    if count <= 0:
        cap.release()
        raise FootageError(source, f"no frames in the chosen range ({total} in the file)")

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, options.start)
            for number in range(options.start, end):
                ok, bgr = cap.read()
                if not ok:
                    return
                if (number - options.start) % options.stride == 0:
                    yield number, bgr[..., ::-1].copy()
        finally:
            cap.release()

    return fps, count, frames()


def savitzky_golay(values: np.ndarray, window: int) -> np.ndarray:
    """Centred quadratic Savitzky–Golay smoothing along axis 0; window 1, or fewer than 3 rows: as is."""
    window = max(1, window | 1)
    if window < 3 or len(values) < 3:
        return values.copy()
    half = min(window // 2, (len(values) - 1) // 2)
    t = np.arange(-half, half + 1, dtype=float)
    design = np.stack([np.ones_like(t), t, t * t], axis=1)
    weights = np.linalg.pinv(design)[0]  # the fitted value at t = 0
    # Odd reflection at the ends (2·x₀ − x_k) keeps a slope going: a plain mirror would bend the ends flat.
    padded = np.concatenate([2 * values[:1] - values[half:0:-1], values, 2 * values[-1:] - values[-2 : -half - 2 : -1]])
    return sum(w * padded[k : k + len(values)] for k, w in enumerate(weights))


def bridge(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Rows where nothing was found, linearly interpolated between found ones (held at the ends)."""
    if found.all() or not found.any():
        return values
    idx = np.arange(len(values))
    out = values.copy()
    for col in range(values.shape[1]):
        out[~found, col] = np.interp(idx[~found], idx[found], values[found, col])
    return out


def eye_openness(ibug: np.ndarray) -> np.ndarray:
    """(subject's left, right) eye aspect ratios of 68 iBUG points: lid gap over eye width (Soukupová & Čech)."""

    def ratio(a: int) -> float:
        p = ibug[a : a + 6]
        gap = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        return float(gap / max(2 * np.linalg.norm(p[0] - p[3]), 1e-9))

    return np.array([ratio(42), ratio(36)])


def blinks(openness: np.ndarray, found: np.ndarray, smooth: int) -> np.ndarray:
    """Eyelid-close weights (N, 2) from per-frame eye aspect ratios: 0 at the take's open eye (its 90th
    percentile), 1 at BLINK_CLOSED of it, interpolated over lost frames. The dense network's lid landmarks barely
    move on closed eyes (fitting FLAME's eyelid blendshapes to them caught blinks at 0.23 of their depth), the
    detector's lid points do."""
    ok = found & np.isfinite(openness).all(axis=1)
    if not ok.any():
        return np.zeros_like(openness)
    filled = bridge(np.where(np.isfinite(openness), openness, 0.0), ok)
    open_eye = np.percentile(filled[ok], 90, axis=0)
    closed = BLINK_CLOSED * open_eye
    weights = np.clip((open_eye - filled) / np.maximum(open_eye - closed, 1e-9), 0.0, 1.0)
    # Below BLINK_DEADZONE a lower lid gap is a squint or landmark noise, which the expression already has.
    weights = np.clip((weights - BLINK_DEADZONE) / (1 - BLINK_DEADZONE), 0.0, 1.0)
    return np.clip(savitzky_golay(weights, smooth), 0.0, 1.0)


def take_registration(cameras: list[Camera], found: np.ndarray) -> tuple[Camera, np.ndarray]:
    """One camera for the take and the head's translation (N, 3) in front of it, from each frame's fitted camera.

    The fit moves the camera (a translation of the image plane and, for a perspective camera, its distance) rather
    than the head; seen from one camera held at the take's median placement, the same image is the head moved by the
    difference: xc = x + tx, yc = y + ty, zc = tz − z, so the head's offset is (tx − t̄x, ty − t̄y, t̄z − tz), exactly.
    The focal length is the take's one (fitted on the first frame), so the head's size is never keyed: β sets it, and
    a change of distance moves the head along the view axis. An
    orthographic camera's scale is held at the take's median and only the image-plane offset becomes a translation."""
    if not cameras:
        raise ValueError("no cameras")
    params = np.stack([np.asarray(c.params, float) for c in cameras])
    ref = np.median(params[found] if found.any() else params, axis=0)
    first = cameras[int(np.argmax(found))] if found.any() else cameras[0]
    camera = Camera(first.kind, ref, first.focal, first.centre)
    if first.is_perspective:
        offset = np.column_stack([params[:, 0] - ref[0], params[:, 1] - ref[1], ref[2] - params[:, 2]])
    else:
        s = max(float(ref[0]), 1e-9)
        offset = np.column_stack([(params[:, 1] - ref[1]) / s, -(params[:, 2] - ref[2]) / s, np.zeros(len(params))])
    return camera, offset


def performance_vertices(model: FlameModel, tracked: Tracked, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
    """The animated head's vertices (n, V, 3) in the frames `rows` (a slice or indices), FLAME's frame in front of `tracked.camera`: β,
    expression, every joint's rotation (the global one about the root joint), the eyelids, then the root's
    translation: as the rig shows them (key_tracked), and as `tracked.camera.project` sees them."""
    from .flame.forward import flame_forward

    pose = tracked.pose[rows]
    n = len(pose)
    lids = None if tracked.eyelids is None or model.eyelid_left is None else tracked.eyelids[rows]
    shape = np.broadcast_to(tracked.shape, (n, len(tracked.shape)))
    vertices = flame_forward(model, shape, tracked.expression[rows], pose, lids).vertices
    if tracked.translation is not None:
        vertices = vertices + tracked.translation[rows][:, None, :]
    return vertices


SCALE_MODES = ("free", "take")


class FrameTracker:
    """Fits one frame after another with β fixed, each starting from the last. The focal length is the first frame's;
    the head's position in the image is fitted on every frame.

    The camera's scale (its distance: the face's size in the image) is where a fit can trade expression for distance:
    an opening mouth lengthens the face, and part of it is read as the face coming closer (on livep_d3 the fitted
    distance varied about twice as much as MediaPipe's upper-face size, and with the mouth). `scale` "take" holds it
    at the median of the first `scale_frames` found frames: bench/track.py's moving error 3.78 -> 3.27 mm and the
    real takes' mouth amplitude up 2-12 %, but a zoom or a lean is then forced into the expression (bench/footage.py's
    ±7 % zoom: the smile no longer widens the mouth for 2 of 3 people, cuts lost), so "free" (fitted on every frame,
    the distance becoming the head's translation along the view axis) is the default. A scale from the upper face
    alone, held in the frame's full fit, was tried and is noisier than the free one (moving error 4.24 mm)."""

    def __init__(self, model: FlameModel, shape: np.ndarray, detector: LandmarkDetector, options: FitOptions,
                 scale: str = "free", scale_frames: int = 10):  # fmt: skip
        if scale not in SCALE_MODES:
            raise ValueError(f"scale {scale!r}: one of {', '.join(SCALE_MODES)}")
        self.model, self.shape, self.detector, self.options = model, shape, detector, options
        self.scale_mode, self.scale_frames = scale, scale_frames
        self.scales: list[float] = []  # "take": the camera scale of the frames fitted so far while it is free
        self.scale: float | None = None  # "take": the take's, once held
        self.state: PhotoState | None = None
        self.face: FaceLandmarks | None = None
        self.openness = np.full(2, np.nan)  # the last frame's eye aspect ratios (NaN: no detector face)

    def landmarks(self, rgb: np.ndarray) -> FaceLandmarks | None:
        """The frame's landmarks for the fit; the detector's own lid points give the eye openness."""
        backend = self.detector.backend_named(self.detector.primary_name)
        dense = getattr(backend, "landmarker", None)
        finder = backend.detector if dense is not None else backend
        faces = sorted(finder.detect(rgb), key=lambda f: -f.size)  # the largest face, as the pipeline
        self.openness = eye_openness(faces[0].ibug68()) if faces else np.full(2, np.nan)
        if faces:
            face = dense_face(dense, rgb, faces[0]) if dense is not None else faces[0]
        elif dense is not None and self.face is not None:  # bridge a short loss on the last frame's crop
            face = dense_face(dense, rgb, self.face)
        else:
            return None
        # Tracked only while the network sees a face there (FACE_SPREAD_MAX, measured in options.py): else lost.
        return face if landmark_spread(face) <= FACE_SPREAD_MAX else None

    def fit(self, rgb: np.ndarray, iterations: int) -> tuple[PhotoState | None, bool]:
        """This frame's state and whether a face was found (else the last state, or None before any)."""
        face = self.landmarks(rgb)
        if face is None:
            return self.state, False
        self.face = face
        obs = Observation.from_face(face, lambda p: np.asarray(p, float), (rgb.shape[1], rgb.shape[0]))
        problem = Problem(self.model, [obs], self.options)
        shape = self.shape[: problem.ns]
        if self.state is None:
            state = initial_state(problem, 0)
            _, states = solve(problem, shape, [state], self.options.rigid_iterations, free_shape=False, rigid=True)
            _, states = solve(problem, shape, states, self.options.iterations, free_shape=False, rigid=False)
        else:
            problem.focal_free = False  # one camera: its focal length comes from the first frame
            start = self.state.copy()
            if self.scale is not None:
                problem.scale_free = False
                params = start.camera.params.copy()
                params[scale_index(start.camera.kind)] = self.scale
                start.camera = start.camera.with_params(params)
            _, states = solve(problem, shape, [start], iterations, free_shape=False, rigid=False)
        state = states[0]
        if self.scale_mode == "take" and self.scale is None:
            self.scales.append(float(state.camera.params[scale_index(state.camera.kind)]))
            if len(self.scales) >= self.scale_frames:
                self.scale = float(np.median(self.scales))
        state.gaze = fit_gaze(problem, shape, state, obs) if self.options.fit_gaze else np.zeros(2)
        self.state = state
        return state, True


def track_footage(
    source: Path, shape: np.ndarray, model: FlameModel, pipeline: PipelineOptions, options: TrackOptions,
    progress: Progress | None = None, cancel: threading.Event | None = None,
) -> Tracked:  # fmt: skip
    """Footage (a video file or a folder of frames, in `options`' range) -> the tracked performance with the
    pipeline's landmark backend: the one flow behind `facesmith animate` and the add-on's Animate from Video. A
    take without any face is an error naming the footage."""
    fps, count, frames = footage_frames(source, options)
    primary, _, _ = resolve_backends(pipeline.landmarks, False)
    with LandmarkDetector(primary, None, pipeline.device) as detector:
        try:
            return track(model, shape, frames, count, fps, detector, pipeline.fit, options, progress, cancel)
        except NoFaceError as exc:  # track() sees frames, not the file they came from
            raise NoFaceError(f"{source}: {exc}") from None


def track(
    model: FlameModel, shape: np.ndarray, frames: Iterator[tuple[int, np.ndarray]], count: int, fps: float,
    detector: LandmarkDetector, fit_options: FitOptions, options: TrackOptions | None = None,
    progress: Progress | None = None, cancel: threading.Event | None = None,
) -> Tracked:  # fmt: skip
    """Track every frame (see the module docstring; `options` default: TrackOptions'); an error if no frame shows a
    face."""
    options = options if options is not None else TrackOptions()
    tracker = FrameTracker(model, shape, detector, fit_options, options.scale, options.scale_frames)
    numbers, states, found, size, openness = [], [], [], (0, 0), []
    for k, (number, rgb) in enumerate(frames):
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
        state, ok = tracker.fit(rgb, options.iterations)
        openness.append(tracker.openness)
        numbers.append(number)
        states.append(state)
        found.append(ok)
        size = (rgb.shape[1], rgb.shape[0])
        if progress is not None:
            progress((k + 1) / max(count, 1), f"frame {number}")
    found_arr = np.array(found, bool)
    if not found_arr.any():
        span = f" (frames {numbers[0]} to {numbers[-1]})" if numbers else ""
        raise NoFaceError(f"no face found in any of the {len(numbers)} frames tracked{span}")
    first = next(s for s in states if s is not None)
    states = [s if s is not None else first for s in states]  # before the first face: the first face's state
    ne, n = len(first.expression), len(states)
    pose = np.stack([s.pose() for s in states])
    expression = np.stack([s.expression for s in states])
    camera, translation = take_registration([s.camera for s in states], found_arr)
    flat = bridge(np.hstack([expression, pose.reshape(n, -1), translation]), found_arr)
    flat = savitzky_golay(flat, options.smooth_frames)
    lids = blinks(np.array(openness), found_arr, options.smooth_frames)
    return Tracked(fps / options.stride, np.array(numbers), np.asarray(shape, float), flat[:, :ne],
                   flat[:, ne : ne + 15].reshape(-1, 5, 3), found_arr, size, lids, flat[:, ne + 15 :],
                   camera)  # fmt: skip


def keyed_curves(model: FlameModel, tracked: Tracked, keys: str) -> dict[str, np.ndarray] | None:
    """What `keys` (options.ANIMATION_KEYS) puts on the head besides the bones: None for "flame" (the expression
    keys, key_tracked's own), the ARKit weights per frame for "arkit" (arkit_curves on the head's ARKit keys)."""
    if keys not in ANIMATION_KEYS:
        raise ValueError(f"keys {keys!r}: one of {', '.join(ANIMATION_KEYS)}")
    if keys == "flame":
        return None
    from .rig import arkit_keys

    return arkit_curves(model, tracked, arkit_keys(model, tracked.shape))


def arkit_curves(
    model: FlameModel, tracked: Tracked, keys: dict[str, np.ndarray], chunk: int = 200
) -> dict[str, np.ndarray]:
    """The performance as ARKit weights per frame: each frame's expression and jaw rotation (as ARKit's jawOpen
    holds the jaw) on the head, matched by the head's ARKit `keys` over the face region (bounded least squares,
    0..1). name -> (N,)."""
    from .arkit import bounded_least_squares, key_matrix
    from .flame.forward import JAW, flame_forward
    from .flame.regions import face_region

    mask = face_region(model)
    names, a = key_matrix(keys, mask)
    gram = a.T @ a
    rest = flame_forward(model, tracked.shape).vertices[0][mask]
    weights = []
    for lo in range(0, len(tracked.expression), chunk):
        pose = np.zeros_like(tracked.pose[lo : lo + chunk])
        pose[:, JAW] = tracked.pose[lo : lo + chunk, JAW]
        n = len(pose)
        shape = np.broadcast_to(tracked.shape, (n, len(tracked.shape)))
        lids = None if tracked.eyelids is None else tracked.eyelids[lo : lo + chunk]
        moved = flame_forward(model, shape, tracked.expression[lo : lo + chunk], pose, lids).vertices[:, mask] - rest
        weights.append(bounded_least_squares(gram, a.T @ moved.reshape(n, -1).T))
    w = np.concatenate(weights, axis=1)
    return {name: w[k] for k, name in enumerate(names)}
