"""Every option of the reconstruction and its default, in one place (no heavy imports: the add-on's panel and
preferences read these defaults at registration)."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("mediapipe", "dlib", "face_alignment")  # landmark backends; "auto" picks the best installed
CAMERA_KINDS = ("orthographic", "weak_perspective", "perspective")
TEXTURE_SIZES = (512, 1024, 2048)
DEFAULT_WORKING_SIDE = 2048  # detection, fitting and texturing work on photos at most this large


@dataclass(frozen=True)
class FitOptions:
    n_shape: int = 100  # capped by the model
    n_expr: int = 50
    camera: str = "orthographic"
    focal_factor: float = 1.6  # perspective: focal length = factor × long image side (about a 50 mm lens)
    # Defaults chosen on bench/synthetic_fit.py (see the closing note of issue B for the grid).
    landmark_sigma: float = 0.015  # expected landmark noise, fraction of face size (≈2 px on a 250 px face)
    robust_k: float = 1.5  # Huber threshold in sigmas: landmarks further off count linearly (outliers)
    mouth_nose_weight: float = 5.0  # Deng et al. 2019 use 20; 5 measured better with MediaPipe's dense lips/nose
    contour_weight: float = 1.0
    shape_prior: float = 1.0  # × ||β||² (β is unit-variance in FLAME)
    expr_prior: float = 1.0  # × ||ψ||²
    jaw_prior: float = 10.0  # × ||jaw||² (radians)
    rigid_iterations: int = 6
    iterations: int = 25
    fit_gaze: bool = True


@dataclass(frozen=True)
class PipelineOptions:
    # FLAME file chosen on the command line (`--flame`) and in the add-on's preferences; the order is
    # --flame, $FACESMITH_FLAME, the preference, then the development model (flame.paths.resolve_flame_path).
    flame_path: str = ""
    flame_preference: str = ""
    landmarks: str = "auto"  # "auto" (the best installed), "mediapipe", "dlib" or "face_alignment"
    fallback: bool = True  # when the chosen backend finds no face, try another installed one
    face_index: int = 0  # faces sorted by size, largest first
    working_side: int = DEFAULT_WORKING_SIDE
    fit: FitOptions = field(default_factory=FitOptions)
    textures: bool = True  # False: a flat skin colour from the photo instead of the photo texture
    texture_size: int = 1024
    expression_keys: int = 50  # exp_XXX shape keys on the head (capped by the model)


DEFAULTS = PipelineOptions()
