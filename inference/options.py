"""Every option of the reconstruction and of the animation from footage, and its default, in one place (no heavy
imports: the add-on's panel, operators and preferences read these defaults at registration)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Landmark backends; "auto" picks the best installed. "dense" is the learned network (landmarks.dense) on the
# crop of the best installed detector.
BACKENDS = ("dense", "mediapipe", "dlib", "face_alignment")
DEVICES = ("auto", "cpu", "cuda")  # where learned networks run: auto = CUDA when onnxruntime offers it
CAMERA_KINDS = ("orthographic", "weak_perspective", "perspective")
REFINE_MODES = ("auto", "on", "off")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")  # the Animate from Video browser offers these
# What the head shows as the photo's expression: FLAME's (the fitted_expression key and the jaw bone), or the same
# expressed as ARKit weights on the ARKit keys (jaw bone at rest: jawOpen holds the jaw), for ARKit pipelines.
FITTED_EXPRESSION_MODES = ("flame", "arkit")
# What a performance from footage is keyed on: FLAME's expression keys and the jaw bone (the default, first), or the
# head's ARKit keys with the jaw bone at rest (jawOpen holds the jaw), for ARKit pipelines.
ANIMATION_KEYS = ("flame", "arkit")
TEXTURE_SIZES = (512, 1024, 2048)
DEFAULT_WORKING_SIDE = 2048  # detection, fitting and texturing work on photos at most this large
# A found face is kept only when its face score (landmarks.detect.FaceScorer: BlazeFace and dlib HOG on crops around
# it) reaches this. From bench/false_faces.py: three draws of 210 non-face images score at most 0.591, 0.615, 0.587
# (page and sunset crops), the 204 portraits far above, 7 of the 6,000 UTKFace crops below (turned faces in crops they
# fill, with glasses or blur, 0.56-0.63; six kept by the dense network, below; the seventh, a head the frame cuts,
# scores 0.69 once HOG also scans the whole photo, FaceScorer.whole_photo_hog). 0.02 above the first two draws'
# highest: a false face costs a junk head, a lost face a clear error. Checked later on 150 more non-face images in
# three draws (blobs, cells, rings, shaded ovals, close HDRI crops): at most 0.602, 0.632, 0.541.
FACE_SCORE_MIN = 0.635
# A face the two detectors are unsure of (score from FACE_SCORE_FLOOR up) is kept when the dense network sees a face
# there: its median σ at most FACE_SPREAD_MAX of its 68 points' box (landmarks.detect.landmark_spread). Measured on
# the same sets: non-face "faces" scoring 0.5 or more spread 0.10 and above; the rocket's tip spreads 0.05 but scores
# 0.40-0.45; 6 of the 7 UTKFace faces the score alone lost (0.56-0.63) spread 0.021-0.056. The tracker uses the
# same bound on every frame (faces 0.011-0.047 on synthetic renders and 292 real video frames; a cutaway, a blank
# or a blurred frame 0.085 and above).
FACE_SCORE_FLOOR = 0.5
FACE_SPREAD_MAX = 0.06


@dataclass(frozen=True)
class FitOptions:
    n_shape: int = 100  # capped by the model
    n_expr: int = 50
    # Perspective with a fitted focal length: a fixed lens or an orthographic camera turns the camera's distance
    # into face shape (fits to exact landmarks on synthetic renders: 2.10 mm from the truth orthographic, 1.22 with a
    # fixed 50 mm lens, 0.73 with the focal length fitted).
    camera: str = "perspective"
    focal_factor: float = 1.6  # perspective: focal length = factor × long image side (about a 50 mm lens)
    fit_focal: bool = True  # perspective: fit the focal length too, starting from focal_factor
    focal_prior: float = 0.25  # × log(focal / start)²: a weak pull (σ = 2 in log focal) towards the start
    # Defaults chosen by a grid search on bench/synthetic_fit.py.
    landmark_sigma: float = 0.015  # expected landmark noise, fraction of face size (≈2 px on a 250 px face)
    robust_k: float = 1.5  # Huber threshold in sigmas: landmarks further off count linearly (outliers)
    mouth_nose_weight: float = 5.0  # Deng et al. 2019 use 20; 5 measured better with MediaPipe's dense lips/nose
    contour_weight: float = 1.0
    # Dense landmarks: the network's σ is taken as each landmark's noise, times this, and at least the floor
    # (fraction of the face size). Chosen on synthetic validation renders, not on a test set.
    dense_noise_scale: float = 3.0
    dense_noise_floor: float = 0.005
    shape_prior: float = 1.0  # × ||β||² (β is unit-variance in FLAME)
    expr_prior: float = 1.0  # × ||ψ||²
    jaw_prior: float = 10.0  # × ||jaw||² (radians)
    rigid_iterations: int = 6
    iterations: int = 25
    fit_gaze: bool = True
    # Several photos: refine by photo-consistency after the landmark fit (fit/photometric.py). "auto": with two
    # photos or more; "on" is the same (one photo has nothing to agree with); "off": landmarks only.
    refine: str = "auto"
    # The colour term's weight, in units of the landmark term (at the noise level). Chosen on in-model session
    # renders (training/dense/views.session_view, seed 6, 16 heads; never on bench/identity's heads): 0.5, 1, 2 gave
    # 1.306, 1.305, 1.606 mm (landmarks only 1.560) and were better than landmarks alone on 11, 9, 5 heads.
    refine_weight: float = 0.5
    refine_grid: int = 96  # skin points: the face's texels of a grid² UV raster (892 at 96 on FLAME 2023)
    refine_radius: float = 0.07  # metres around the nose tip that the skin points cover (not the hairline)
    refine_opening: float = 0.005  # metres the skin points keep from the eyeballs and the inner lip line
    refine_levels: tuple[float, ...] = (0.02, 0.01, 0.005)  # blur per level, share of the face size
    refine_iterations: int = 5  # Levenberg–Marquardt steps per level
    # Pins (an artist's corrections, fit/pins.py): each is a landmark of this σ, a fraction of the face size: 0.5 px on
    # a 250 px face, 2.5 times tighter than the dense landmarks' floor (dense_noise_floor), so one pin outweighs the
    # handful of landmarks right around it and the point lands near where the artist put it: a nose tip dragged 8 px
    # on a portrait lands 1.1 px away (tests/blender/test_pins_cli.py; 3.2 px at σ 0.004, under 1 px at 0.001). Tighter pins
    # converge more slowly (below: 2.3 mm from the converged head after 4 steps at 0.001, 0.3 to 0.8 mm at 0.002).
    # Pins get no Huber weight and no photo confidence: the artist is not an outlier.
    pin_sigma: float = 0.002
    # Levenberg–Marquardt steps of a re-solve with pins from the current head (a drag, or the first pins after the
    # automatic fit): the problem is nearly linear in β and ψ there; with 5 pins per photo 8 px off the landmarks
    # (fighting them: a worst case) on a 1- and a 3-photo fit, 4 steps land within 0.34 / 0.77 mm of the converged
    # head (25 steps), 3 steps within 1.0 / 1.1 mm. A drag starts from the last solve, much closer.
    pin_iterations: int = 4


@dataclass(frozen=True)
class PipelineOptions:
    # FLAME file chosen on the command line (`--flame`) and in the add-on's preferences; the order is
    # --flame, $FACESMITH_FLAME, the preference, then the development model (flame.paths.resolve_flame_path).
    flame_path: str = ""
    flame_preference: str = ""
    landmarks: str = "auto"  # "auto" (the best installed: dense when its network is there), or one of BACKENDS
    device: str = "auto"  # one of DEVICES
    fallback: bool = True  # when the chosen backend finds no face, try another installed one
    face_index: int = 0  # faces sorted by size, largest first
    working_side: int = DEFAULT_WORKING_SIDE
    fit: FitOptions = field(default_factory=FitOptions)
    textures: bool = True  # False: a flat skin colour from the photo instead of the photo texture
    texture_size: int = 1024
    # Divide the camera's white balance and exposure out of the albedo (texture/colour.py); False keeps the
    # photo's own colours.
    colour_constancy: bool = True
    # Scale of the displacement recovered from shading (1: as measured; 0: none). Below 1 where creases from shading
    # noise make a face look older than it is.
    detail_strength: float = 1.0
    expression_keys: int = 50  # exp_XXX shape keys on the head (capped by the model)
    fitted_expression: str = "flame"  # one of FITTED_EXPRESSION_MODES


DEFAULTS = PipelineOptions()


@dataclass(frozen=True)
class TrackOptions:
    """How footage is tracked (inference/track.py)."""

    start: int = 0  # first frame (of the file or the folder's sorted frames)
    end: int | None = None  # one past the last; None: to the end
    stride: int = 1
    smooth_frames: int = 5  # Savitzky–Golay window (odd; 1: no smoothing)
    iterations: int = 6  # Levenberg–Marquardt steps per frame after the first
    fps: float = 25.0  # a folder of frames has no rate of its own
    # How each frame's camera scale (distance: the face's size in the image) is found, see track.FrameTracker: "free"
    # (fitted with everything else, every frame) or "take" (held at the median of the first `scale_frames` found
    # frames for the rest of the take).
    scale: str = "free"
    scale_frames: int = 10


IDENTITY_FRAMES = 5  # frames of the footage a head is built from when none is given


@dataclass(frozen=True)
class AnimateOptions:
    """Every option of an animation from footage (inference/animate.py) and its default: `facesmith animate`'s flags
    and the add-on's Animate from Video read them here."""

    track: TrackOptions = field(default_factory=TrackOptions)  # the footage's range, stride, smoothing, rate
    keys: str = ANIMATION_KEYS[0]  # what the performance is keyed on: one of ANIMATION_KEYS
    identity_frames: int = IDENTITY_FRAMES  # without a head: frames, spread over the footage, one is built from
