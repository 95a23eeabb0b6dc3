"""Everything the Blender side needs to build a rigged head, as plain arrays (no bpy here).

Frames: all positions are in FLAME's frame (metres, x right, y up, z towards the viewer). The Blender
side puts the whole rig under one object rotated +90° about X, so FLAME's y becomes Blender's Z.
Bones all point along +y with zero roll, so every bone's rest axes are FLAME's axes and a pose
bone's local rotation is exactly FLAME's per-joint rotation.

Bones: root (no weights, carries FLAME's global rotation) → neck (FLAME joint 0: lower neck)
→ head (FLAME joint 1, FLAME's "neck" pose: the skull) → jaw (2), eye_L (3), eye_R (4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .arkit import arkit_weights, key_scales, load_arkit_keys, scaled_to_head
from .camera import Camera
from .flame.forward import JAW, flame_forward, landmarks68
from .flame.model import FLAME_MESH, FlameModel
from .flame.regions import face_region
from .mouth import MouthParts, fitted_parts, load_mouth
from .options import FITTED_EXPRESSION_MODES
from .result import FitResult, PhotoFit
from .texture.eyes import EyeGeometry, sphere_loop_uvs

if TYPE_CHECKING:  # the fit's targets import the landmark detectors (Pillow, OpenCV): not for the add-on's register
    from .fit.targets import Pin

BONES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
BONE_PARENTS = {"root": None, "neck": "root", "head": "neck", "jaw": "head", "eye_L": "head", "eye_R": "head"}
FLAME_JOINT_BONES = ("neck", "head", "jaw", "eye_L", "eye_R")  # bone deforming FLAME joint 0..4
BONE_LENGTHS = {"root": 0.03, "neck": 0.08, "head": 0.16, "jaw": 0.04, "eye_L": 0.02, "eye_R": 0.02}
EXPRESSION_SLIDER = 3.0  # ψ is unit-variance: ±3 σ
POSE_FEATURE_SLIDER = 2.0  # entries of R − I lie in [−2, 2]
IDENTITY_KEY = "shape"  # RigData.metadata's β: the identity footage is tracked with (inference/animate.py)


def quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """(w, x, y, z) unit quaternion of an axis-angle vector."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    angle = float(np.linalg.norm(aa))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.r_[np.cos(angle / 2), np.sin(angle / 2) * aa / angle]


# Entry (r, c) of a rotation matrix from a unit quaternion (w, x, y, z), as driver expressions over
# the variables w, x, y, z; minus 1 on the diagonal gives FLAME's pose feature R − I.
_ROTATION_ENTRIES = (
    ("1 - 2*(y*y + z*z)", "2*(x*y - w*z)", "2*(x*z + w*y)"),
    ("2*(x*y + w*z)", "1 - 2*(x*x + z*z)", "2*(y*z - w*x)"),
    ("2*(x*z - w*y)", "2*(y*z + w*x)", "1 - 2*(x*x + y*y)"),
)


def pose_feature_expression(r: int, c: int) -> str:
    """Driver expression for FLAME pose feature (R − I)[r, c] of a bone's local rotation quaternion."""
    entry = _ROTATION_ENTRIES[r][c]
    return f"-{entry[4:]}" if r == c else entry  # (1 − 2(..)) − 1 = −2(..)


@dataclass(frozen=True)
class Corrective:
    name: str  # shape key name, e.g. "pose_jaw_01"
    bone: str
    row: int
    col: int
    delta: np.ndarray  # (V, 3) per unit of the feature


@dataclass(frozen=True)
class CameraSetup:
    kind: str  # "ORTHO" or "PERSP"
    location: np.ndarray  # (3,) FLAME frame, looking down −z with +y up
    ortho_scale: float  # metres across the larger image side (ORTHO)
    lens_mm: float  # focal length for a 36 mm sensor fitted to the larger side (PERSP)
    resolution: tuple[int, int]  # (width, height) px
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class RigData:
    name: str
    basis: np.ndarray  # (V, 3) fitted identity, neutral expression, zero pose
    faces: np.ndarray  # (F, 3)
    loop_uvs: np.ndarray | None  # (F * 3, 2) one UV per face corner
    expression_keys: np.ndarray  # (K, V, 3) per unit ψ_k
    fitted_expression: np.ndarray  # (V, 3) Σ ψ_k · key_k
    eyelid_keys: dict[str, np.ndarray]
    correctives: tuple[Corrective, ...]
    joints: np.ndarray  # (5, 3) rest joints of the basis
    weights: np.ndarray  # (V, 5) FLAME skinning weights
    pose_quaternions: dict[str, np.ndarray]  # bone -> (w, x, y, z) fitted pose
    bone_heads: dict[str, np.ndarray]  # rest positions, FLAME frame
    bone_tails: dict[str, np.ndarray]  # head + (0, length, 0): every bone along +y, zero roll
    eyeballs: dict[str, tuple[np.ndarray, np.ndarray]]  # eye bone -> sphere (vertices in the rig frame, faces)
    eyeball_faces: np.ndarray  # (F,) bool: FLAME's own eyeball triangles, hidden behind the spheres
    camera: CameraSetup
    photo_path: str
    metadata: dict = field(default_factory=dict)
    photo_paths: tuple[str, ...] = ()  # every photo of the fit, in its order (the pins' photo indices)
    pins: tuple[Pin, ...] = ()  # the artist's pins the head was solved with (FitResult.pins)
    pin_residuals_px: tuple[float, ...] = ()  # per pin: how far its point landed from where it was put
    arkit_keys: dict[str, np.ndarray] = field(default_factory=dict)  # ARKit name -> (V, 3) delta (inference/arkit.py)
    # The photo's expression (ψ and the jaw's rotation) as ARKit weights, and the RMS (mm) they leave; and which of
    # the two the head shows as its fitted expression: "flame" (fitted_expression key + jaw bone) or "arkit".
    arkit_fitted: dict[str, float] = field(default_factory=dict)
    arkit_fitted_rms_mm: float | None = None
    fitted_as: str = "flame"
    mouth: MouthParts | None = None  # teeth, gums, tongue, socket and lashes (inference/mouth.py)
    # One UV per face corner of the eyeball spheres (all share uv_sphere's triangles): texture/eyes.py's layout.
    eyeball_loop_uvs: np.ndarray | None = None


def bone_heads(joints: np.ndarray) -> dict[str, np.ndarray]:
    """Rest positions of each bone's head: FLAME joints; root shares the neck's pivot."""
    heads = {bone: joints[j] for j, bone in enumerate(FLAME_JOINT_BONES)}
    heads["root"] = joints[0]
    return heads


def camera_setup(camera: Camera, size: tuple[int, int]) -> CameraSetup:
    """A Blender camera (FLAME frame) that sees the head as the fitted camera saw it in the photo."""
    w, h = size
    long_side = max(w, h)
    if camera.is_perspective:
        tx, ty, tz = camera.params
        lens = camera.focal / long_side * 36.0
        cx, cy = camera.centre
        shift = ((cx - w / 2) / long_side * -1.0, (cy - h / 2) / long_side)
        return CameraSetup("PERSP", np.array([-tx, -ty, tz]), 0.0, lens, (w, h), shift)
    s, tx, ty = camera.params
    # Pixel (u, v) = (s·x + tx, −s·y + ty): the image centre is the point below.
    centre = np.array([(w / 2 - tx) / s, (ty - h / 2) / s, 1.0])
    return CameraSetup("ORTHO", centre, long_side / s, 0.0, (w, h))


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points: |p|² = 2 c·p + (r² − |c|²)."""
    a = np.c_[2 * points, np.ones(len(points))]
    sol, *_ = np.linalg.lstsq(a, (points**2).sum(1), rcond=None)
    return sol[:3], float(np.sqrt(sol[3] + sol[:3] @ sol[:3]))


def uv_sphere(segments: int = 24, rings: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere with its pole on +z (FLAME's forward, where the pupil goes): vertices, triangles."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    verts = np.vstack([[0.0, 0.0, 1.0], ring, [0.0, 0.0, -1.0]])
    n, last = segments, len(verts) - 1
    faces = [[0, 1 + i, 1 + (i + 1) % n] for i in range(n)]
    for r in range(rings - 2):
        for i in range(n):
            a, b = 1 + r * n + i, 1 + r * n + (i + 1) % n
            faces += [[a, a + n, b], [b, a + n, b + n]]
    base = 1 + (rings - 2) * n
    faces += [[base + (i + 1) % n, base + i, last] for i in range(n)]
    return verts, np.array(faces)


EYEBALL_SCALE = 1.02  # the spheres are this much larger than FLAME's eyeballs: they cover them without z-fighting


def eyeballs(model: FlameModel, basis: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Spheres fitted to FLAME's eyeball vertices, EYEBALL_SCALE larger; their front pole (+z) is the pupil."""
    unit_v, unit_f = uv_sphere()
    out = {}
    for joint, bone in ((3, "eye_L"), (4, "eye_R")):
        centre, radius = fit_sphere(basis[model.lbs_weights[:, joint] > 0.99])
        out[bone] = (centre + unit_v * radius * EYEBALL_SCALE, unit_f)
    return out


def eyeball_loop_uvs() -> np.ndarray:
    """The eyeball spheres' UVs, one per face corner, in the eye texture's layout (texture/eyes.py)."""
    return sphere_loop_uvs(*uv_sphere())


def eye_geometry(model: FlameModel, basis: np.ndarray) -> EyeGeometry:
    """What the iris measurement needs of the head: the pupil vertices and the eyeball spheres' radius (mm)."""
    from .fit.gaze import pupil_vertices

    eyeball = model.lbs_weights[:, 3] > 0.99
    if eyeball.sum() < 4:
        return EyeGeometry(np.array([-1, -1]))
    return EyeGeometry(pupil_vertices(model), 1000.0 * fit_sphere(basis[eyeball])[1] * EYEBALL_SCALE)


def region_scales(model: FlameModel, shape: np.ndarray) -> dict[str, float]:
    """The fitted head's eye distance and mouth width against the template's (arkit.key_scales); 1 without
    FLAME's landmarks."""
    if not model.has_landmarks68:
        return {"eyes": 1.0, "mouth": 1.0}
    return key_scales(*(landmarks68(model, flame_forward(model, s))[0] for s in (None, shape)))


def arkit_keys(model: FlameModel, shape: np.ndarray, scales: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """The shipped ARKit keys (FLAME's mesh only, else {}), scaled to the fitted head (`scales`, else
    region_scales of `shape`)."""
    keys = load_arkit_keys(model.n_vertices) if (model.n_vertices, model.n_faces) == FLAME_MESH else None
    return scaled_to_head(keys, scales or region_scales(model, shape)) if keys else {}


def mouth_parts(model: FlameModel, basis: np.ndarray, scales: dict[str, float]) -> MouthParts | None:
    """The shipped teeth, gums, tongue, mouth socket and lashes on the fitted head (FLAME's mesh only)."""
    asset = load_mouth(model.n_vertices) if (model.n_vertices, model.n_faces) == FLAME_MESH else None
    return None if asset is None else fitted_parts(asset, model.v_template, basis, scales)


def fitted_as_arkit(
    model: FlameModel, keys: dict[str, np.ndarray], shape: np.ndarray, photo: PhotoFit
) -> tuple[dict[str, float], float | None]:  # fmt: skip
    """The photo's expression — ψ and the jaw's rotation, as ARKit's jawOpen holds the jaw — as ARKit weights
    (bounded least squares over the face region), and the RMS (mm) of what they leave; ({}, None) without keys."""
    if not keys:
        return {}, None
    jaw_only = np.zeros_like(photo.pose)
    jaw_only[JAW] = photo.pose[JAW]
    posed = flame_forward(model, shape, photo.expression, jaw_only).vertices[0]
    return arkit_weights(keys, posed - flame_forward(model, shape).vertices[0], face_region(model))


def rig_data(
    model: FlameModel, result: FitResult, photo_index: int = 0, name: str = "head", n_expression_keys: int | None = None,
    fitted_as: str = "flame",
) -> RigData:  # fmt: skip
    """Arrays for the Blender head of `result`, posed as in photo `photo_index`; `n_expression_keys` limits
    the exp_XXX keys (default: every component the model has). The fitted expression always uses all.
    `fitted_as` "arkit" shows the photo's expression through the ARKit keys (jaw bone at rest) instead of the
    fitted_expression key and the jaw bone (FLAME meshes only: others have no ARKit keys and stay "flame")."""
    if fitted_as not in FITTED_EXPRESSION_MODES:
        raise ValueError(f"unknown fitted expression {fitted_as!r}; choose one of {', '.join(FITTED_EXPRESSION_MODES)}")
    photo: PhotoFit = result.photos[photo_index]
    n_expr = len(photo.expression)
    basis = flame_forward(model, result.shape).vertices[0]
    joints = model.j_regressor @ basis
    all_keys = model.exprdirs.transpose(2, 0, 1)
    fitted = np.einsum("kvc,k->vc", all_keys[:n_expr], photo.expression)
    expression_keys = all_keys[: n_expression_keys or model.n_expr]
    correctives = tuple(
        Corrective(f"pose_{FLAME_JOINT_BONES[j]}_{r}{c}", FLAME_JOINT_BONES[j], r, c,
                   model.posedirs[:, :, (j - 1) * 9 + r * 3 + c])
        for j in range(1, 5) for r in range(3) for c in range(3)
    )  # fmt: skip
    eyelids = {}
    if model.eyelid_left is not None:
        eyelids = {"eyelid_L": model.eyelid_left, "eyelid_R": model.eyelid_right}
    loop_uvs = None
    if model.uv_coords is not None:
        loop_uvs = model.uv_coords[model.uv_faces.reshape(-1)]
    pose = photo.pose
    quats = {"root": quaternion(pose[0])}
    quats.update({bone: quaternion(pose[j]) for j, bone in enumerate(FLAME_JOINT_BONES) if j > 0})
    quats["neck"] = quaternion(np.zeros(3))  # FLAME's global rotation sits on root
    scales = region_scales(model, result.shape)  # the ARKit keys and the mouth parts scale alike
    keys = arkit_keys(model, result.shape, scales)
    weights, rms = fitted_as_arkit(model, keys, result.shape, photo)
    fitted_as = fitted_as if weights else "flame"
    if fitted_as == "arkit":
        quats["jaw"] = quaternion(np.zeros(3))  # jawOpen holds the jaw's rotation
    heads = bone_heads(joints)
    return RigData(
        name=name,
        basis=basis,
        faces=model.faces,
        loop_uvs=loop_uvs,
        expression_keys=expression_keys,
        fitted_expression=fitted,
        eyelid_keys=eyelids,
        correctives=correctives,
        joints=joints,
        weights=model.lbs_weights,
        pose_quaternions=quats,
        bone_heads=heads,
        bone_tails={b: h + np.array([0.0, BONE_LENGTHS[b], 0.0]) for b, h in heads.items()},
        eyeballs=eyeballs(model, basis),
        # FLAME's eyeballs carry a corneal bulge that would poke through the spheres: they get hidden.
        eyeball_faces=(model.lbs_weights[model.faces][..., 3:5].sum(-1) > 0.99).all(axis=1),
        camera=camera_setup(photo.camera, photo.image_size),
        photo_path=photo.path,
        photo_paths=tuple(p.path for p in result.photos),
        pins=result.pins,
        pin_residuals_px=result.pin_residuals_px,
        metadata={"model": result.model_description, "shape_components": int(len(result.shape)),
                  IDENTITY_KEY: [float(b) for b in result.shape],
                  "expression_components": int(model.n_expr)},
        arkit_keys=keys,
        arkit_fitted=weights,
        arkit_fitted_rms_mm=rms,
        fitted_as=fitted_as,
        mouth=mouth_parts(model, basis, scales),
        eyeball_loop_uvs=eyeball_loop_uvs(),
    )  # fmt: skip
