"""A procedural FLAME-structured head, so the FLAME, fit and texture tests run without ../shared.

Random bases on a real structure: a head (a warped lat-long ellipsoid, metres, FLAME's frame: x to the
subject's left, y up, z towards the viewer) with a nose, eye sockets and a mouth slit whose lips the jaw
parts; FLAME's 5 joints regressed from vertex rings; eyeballs as separate spheres skinned fully to the eye
joints (as FLAME marks them); smooth low-frequency shape and expression bases at FLAME's scale; small pose
correctives; a UV chart symmetric about u = ½; the 68-point (static + yaw-dependent contour) and MediaPipe
embeddings at FLAME's places. Sizes follow FLAME 2023's template (eyes at y ≈ 23 mm, nose tip at z ≈ 75 mm,
chin at y ≈ −91 mm). Building it takes about 0.1 s.
"""

from __future__ import annotations

import numpy as np

from facesmith.inference.flame.model import FlameModel, make_model
from facesmith.inference.landmarks.detect import MEDIAPIPE_TO_IBUG68
from facesmith.inference.landmarks.embedding import cast_onto_mesh
from facesmith.inference.result import FitResult, PhotoFit

CENTRE = np.array([0.0, -0.02, -0.04])  # of the head ellipsoid
RADII = np.array([0.078, 0.15, 0.09])
N_LON, N_LAT = 40, 27  # columns and ring spacings of the head's lat-long mesh
WARP = 0.23  # how much denser the mesh is on the face than at the back; with 27 rings one lies near the mouth
NOSE_TIP = np.array([0.0, -0.007])  # (x, y) of the nose's peak
EYE = np.array([0.032, 0.023])  # (x, y) of the left eye's centre; the right one is mirrored
EYE_RADIUS = 0.012
MOUTH_Y, MOUTH_HALF_WIDTH = -0.0445, 0.021  # the slit between the lips
# Joint heights as in FLAME 2023: the root low in the neck, the head and jaw pivots behind the face.
ROOT_Y, NECK_Y, JAW_Y = -0.146, -0.009, -0.0155
UV_MARGIN, UV_EYE_STRIP = 0.02, 0.2  # the head's chart sits above a strip that holds the two eyeballs

# iBUG points 17..67 in the image plane (x, y mm), the subject's right half and the middle; the left
# half is mirrored. Rounded from FLAME 2023's landmarks on its template; the inner lips are put either
# side of the slit, so the jaw parts them.
_RIGHT_AND_MIDDLE = {
    17: (-61, 27), 18: (-52, 43), 19: (-38, 47), 20: (-23, 45), 21: (-9, 40),
    27: (0, 25), 28: (0, 14), 29: (0, 4), 30: (0, -7), 31: (-12, -20), 32: (-6, -22), 33: (0, -24),
    36: (-45, 21), 37: (-37, 27), 38: (-27, 27), 39: (-19, 20), 40: (-27, 17), 41: (-36, 17),
    48: (-23, -46), 49: (-16, -41), 50: (-6, -39), 51: (0, -40), 57: (0, -51), 58: (-6, -51), 59: (-17, -50),
    60: (-21, -44.5), 61: (-6, -44), 62: (0, -44), 66: (0, -45), 67: (-7, -45),
}  # fmt: skip
_MIRROR = {22: 21, 23: 20, 24: 19, 25: 18, 26: 17, 34: 32, 35: 31, 42: 39, 43: 38, 44: 37, 45: 36, 46: 41, 47: 40,
           52: 50, 53: 49, 54: 48, 55: 59, 56: 58, 63: 61, 64: 60, 65: 67}  # fmt: skip
# iBUG 0..16, the jaw line from the subject's right ear round the chin (x, y mm), as on FLAME's template.
_JAW_RIGHT = np.array([(-72, 16), (-71, -2), (-68, -21), (-66, -40), (-60, -56), (-50, -71), (-36, -82), (-18, -89)])
JAW_LINE = np.r_[_JAW_RIGHT, [(0, -91)], _JAW_RIGHT[::-1] * [-1, 1]] / 1000.0


def ibug_static_xy() -> np.ndarray:
    """(51, 2) image-plane positions of iBUG points 17..67 on the frontal template, metres."""
    table = {
        **_RIGHT_AND_MIDDLE,
        **{k: (-_RIGHT_AND_MIDDLE[m][0], _RIGHT_AND_MIDDLE[m][1]) for k, m in _MIRROR.items()},
    }
    return np.array([table[i] for i in range(17, 68)]) / 1000.0


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 before edge0, 1 after edge1, C¹ between: weights that end exactly (jaw locality is tested with > 0)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def lat_long(
    n_lon: int, n_lat: int, warp: float, snap: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit sphere, poles on ±y: vertices (pole, rings of n_lon, pole), outward triangles, UVs (seam at −z,
    u = ½ at +z) and UV triangles.

    `warp` packs rings near the equator and columns near +z, where the face is; the UVs stay uniform in the
    ring and column index, so the face also gets more of the texture (as in FLAME's layout). `snap` moves the
    ring nearest to that height (y) onto it."""
    t = np.arange(1, n_lat) / n_lat
    theta = np.pi * t + warp * np.sin(2 * np.pi * t)  # monotonic for warp < ½
    if snap is not None:
        theta[np.argmin(np.abs(np.cos(theta) - snap))] = np.arccos(snap)
    s = np.arange(n_lon + 1) / n_lon
    phi = 2 * np.pi * s[:-1] - np.pi
    phi = phi - warp * np.sin(phi)  # odd in phi: the mesh stays mirror-symmetric, the seam stays at the back
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    rings = np.stack([np.sin(th) * np.sin(ph), np.cos(th), np.sin(th) * np.cos(ph)], -1).reshape(-1, 3)
    verts = np.vstack([[0.0, 1.0, 0.0], rings, [0.0, -1.0, 0.0]])
    n_rings, bottom = n_lat - 1, len(verts) - 1
    uv_grid = np.stack(np.meshgrid(s, 1 - t, indexing="xy"), -1).reshape(-1, 2)  # n_lon + 1 per ring: a seam
    caps = np.stack([(np.arange(n_lon) + 0.5) / n_lon, np.ones(n_lon)], 1)
    uv = np.vstack([uv_grid, caps, caps * [1, 0]])  # the poles get one UV per triangle: no UV degeneracy
    top_uv, bottom_uv = n_rings * (n_lon + 1), n_rings * (n_lon + 1) + n_lon

    def vid(r: int, j: int) -> int:
        return 1 + r * n_lon + j % n_lon

    def uid(r: int, j: int) -> int:
        return r * (n_lon + 1) + j

    faces, uv_faces = [], []
    for j in range(n_lon):
        faces += [[0, vid(0, j), vid(0, j + 1)], [vid(n_rings - 1, j), bottom, vid(n_rings - 1, j + 1)]]
        uv_faces += [
            [top_uv + j, uid(0, j), uid(0, j + 1)],
            [uid(n_rings - 1, j), bottom_uv + j, uid(n_rings - 1, j + 1)],
        ]
        for r in range(n_rings - 1):
            a, b, c, d = vid(r, j), vid(r, j + 1), vid(r + 1, j), vid(r + 1, j + 1)
            ua, ub, uc, ud = uid(r, j), uid(r, j + 1), uid(r + 1, j), uid(r + 1, j + 1)
            faces += [[a, c, b], [b, c, d]]
            uv_faces += [[ua, uc, ub], [ub, uc, ud]]
    faces, uv_faces = np.array(faces), np.array(uv_faces)
    tri = verts[faces]
    inward = np.einsum("fc,fc->f", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri.sum(1)) < 0
    faces[inward], uv_faces[inward] = faces[inward][:, ::-1], uv_faces[inward][:, ::-1]
    return verts, faces, uv, uv_faces


def front_hits(verts: np.ndarray, faces: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangle and barycentric weights of the surface point seen first along −z at each (x, y)."""
    uv = verts[:, :2] * [1.0, -1.0]  # cast_onto_mesh works in pixels, y down
    tri, bary = cast_onto_mesh(uv, verts[:, 2], faces, xy * [1.0, -1.0])
    assert (tri >= 0).all(), "a landmark missed the procedural head"
    return tri, bary


def smooth_fields(rng: np.random.Generator, points: np.ndarray, n: int, wavelength: float) -> np.ndarray:
    """(P, 3, n) random low-frequency vector fields: sums of a few plane waves, not white noise."""
    omega = rng.normal(scale=2 * np.pi / wavelength / np.sqrt(3), size=(n, 6, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, 6, 1))
    waves = np.sin(omega @ points.T + phase)  # (n, 6, P)
    return np.einsum("ntc,ntp->pcn", rng.normal(size=(n, 6, 3)), waves)


def principal(fields: np.ndarray, rms_m: np.ndarray) -> np.ndarray:
    """Orthogonal components (as PCA bases are) with the given per-vertex RMS for a unit coefficient."""
    v, _, n = fields.shape
    q, _ = np.linalg.qr(fields.reshape(-1, n))
    return q.reshape(v, 3, n) * (rms_m * np.sqrt(v))


def head_surface() -> tuple[np.ndarray, ...]:
    """Head vertices, triangles, UVs, UV triangles, and the indices of the lower lip's slit vertices.

    The ellipsoid narrows into a neck; a nose and two eye sockets are pushed along z. The mouth is a slit:
    the ring at the mouth line is doubled across the mouth, the triangles below taking the copies, so the
    lips meet at rest and the jaw parts them (FLAME's mouth is open in the same way)."""
    unit, faces, uv, uv_faces = lat_long(N_LON, N_LAT, WARP, snap=(MOUTH_Y - CENTRE[1]) / RADII[1])
    neck = 1.0 - 0.35 * smoothstep(-0.45, -0.95, unit[:, 1])
    head = CENTRE + RADII * unit * np.c_[neck, np.ones(len(unit)), neck]
    front = np.clip(unit[:, 2], 0, 1) ** 4  # bumps on the face, never through to the back of the head

    def bump(x: float, y: float, sx: float, sy: float) -> np.ndarray:
        return front * np.exp(-(((head[:, 0] - x) / sx) ** 2 + ((head[:, 1] - y) / sy) ** 2) / 2)

    sockets = bump(-EYE[0], EYE[1], 0.013, 0.013) + bump(EYE[0], EYE[1], 0.013, 0.013)
    head[:, 2] += 0.025 * bump(*NOSE_TIP, 0.010, 0.022) - 0.007 * sockets
    ring = 1 + N_LON * np.argmin(np.abs(head[1:-1:N_LON, 1] - MOUTH_Y)) + np.arange(N_LON)
    upper = ring[np.abs(head[ring, 0]) < MOUTH_HALF_WIDTH - 1e-6]  # the corners stay single
    lower = np.arange(len(head), len(head) + len(upper))
    below = np.isin(faces, ring + N_LON).any(axis=1)  # triangles between the mouth ring and the next one down
    remap = np.arange(len(head) + len(upper))
    remap[upper] = lower
    faces[below] = remap[faces[below]]
    return np.vstack([head, head[upper]]), faces, uv, uv_faces, lower


def contour_embedding(head: np.ndarray, head_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLAME's yaw-dependent jaw line (79, 17): per whole degree of yaw, the points the turn hides move forward
    onto the surface in front of them along the view (DECA's contour follows what a detector sees as the
    face's outline); the others stay on the frontal jaw line."""
    faces, bary = np.zeros((79, 17), np.int64), np.zeros((79, 17, 3))
    faces[0], bary[0] = front_hits(head, head_faces, JAW_LINE)
    for row in range(1, 79):
        yaw = np.radians(row if row <= 39 else 39 - row)  # rows 40..78 hold −1..−39 degrees (forward.contour_rows)
        c, s = np.cos(yaw), np.sin(yaw)
        turned = head @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
        points = np.einsum("kc,kcd->kd", bary[0], turned[head_faces[faces[0]]])
        faces[row], bary[row] = front_hits(turned, head_faces, points[:, :2])
        hit = np.einsum("kc,kcd->kd", bary[row], turned[head_faces[faces[row]]])
        seen = hit[:, 2] < points[:, 2] + 1e-4  # the point itself is what the view meets first
        faces[row, seen], bary[row, seen] = faces[0, seen], bary[0, seen]
    return faces, bary


def make_procedural_arrays(seed: int = 0, n_shape: int = 20, n_expr: int = 10) -> dict[str, np.ndarray]:
    """Every array of a FlameModel, named as make_model expects; `seed` draws the bases (the mesh is fixed)."""
    rng = np.random.default_rng(seed)
    head, head_faces, head_uv, head_uv_faces, lower_lip = head_surface()
    # Eyeballs: spheres with a pole at +z (the pupil, which fit.gaze takes as the front-most vertex), their
    # front 1 mm out of the socket. The left one is the right one mirrored, triangles turned to stay outward.
    ball, ball_faces, ball_uv, ball_uv_faces = lat_long(12, 8, 0.0)
    ball = ball[:, [0, 2, 1]] * [1, 1, -1]  # +y pole to +z (a rotation: orientation kept)
    tri, bary = front_hits(head, head_faces, -EYE[None] * [1, -1])
    socket = np.array([-EYE[0], EYE[1], bary[0] @ head[head_faces[tri[0]], 2]])  # skin in front of the right eye
    right = socket + [0, 0, 0.001 - EYE_RADIUS] + EYE_RADIUS * ball
    nh, nb = len(head), len(ball)
    verts = np.vstack([head, right, right * [-1, 1, 1]])
    faces = np.vstack([head_faces, ball_faces + nh, ball_faces[:, ::-1] + nh + nb])
    head_uv = [UV_MARGIN, UV_EYE_STRIP] + head_uv * [1 - 2 * UV_MARGIN, 1 - UV_MARGIN - UV_EYE_STRIP]
    right_uv = [0.1, UV_MARGIN] + ball_uv * [0.3, UV_EYE_STRIP - 2 * UV_MARGIN]
    uv = np.vstack([head_uv, right_uv, right_uv * [-1, 1] + [1, 0]])  # mirrored about u = ½
    nu, nbu = len(head_uv), len(ball_uv)
    uv_faces = np.vstack([head_uv_faces, ball_uv_faces + nu, ball_uv_faces[:, ::-1] + nu + nbu])
    eye_r, eye_l = np.arange(nh, nh + nb), np.arange(nh + nb, nh + 2 * nb)
    on_head = np.zeros(len(verts))
    on_head[:nh] = 1.0
    x, y, z = verts.T

    # Skinning: the lower neck follows the root, the lower face the jaw, the rest the head; eyes their joint.
    # Across the mouth the lower lip (below the slit) is the jaw's and the upper lip the head's; beyond the
    # corners the cheeks blend over a few centimetres.
    lips = smoothstep(MOUTH_HALF_WIDTH + 0.01, MOUTH_HALF_WIDTH, np.abs(x))
    below = (y < MOUTH_Y - 1e-6) | np.isin(np.arange(len(verts)), lower_lip)
    jaw = lips * below + (1 - lips) * smoothstep(MOUTH_Y + 0.008, MOUTH_Y - 0.016, y)
    root = smoothstep(-0.10, -0.14, y) * on_head
    jaw *= smoothstep(-0.02, 0.02, z) * (1 - smoothstep(-0.10, -0.125, y)) * on_head * (1 - root)
    weights = np.c_[root, on_head - root - jaw, jaw, np.zeros((len(verts), 2))]
    weights[eye_l, 3] = weights[eye_r, 4] = 1.0

    # Joints: the root, head and jaw rows average the two rings around their height (weighted by arc length,
    # as the columns are denser at the front), so they sit on the head's axis; the eyes average their eyeball.
    ring_y = head[1 : 1 + N_LON * (N_LAT - 1) : N_LON, 1]
    arc = 1 - WARP * np.cos(np.arctan2(head[1 : 1 + N_LON, 0], head[1 : 1 + N_LON, 2] - CENTRE[2]))
    arc /= arc.sum()  # d(longitude)/d(column), normalised

    def ring_row(height: float) -> np.ndarray:
        r = int(np.clip(np.searchsorted(-ring_y, -height) - 1, 0, len(ring_y) - 2))
        t = (height - ring_y[r]) / (ring_y[r + 1] - ring_y[r])
        row = np.zeros(len(verts))
        row[1 + r * N_LON : 1 + (r + 1) * N_LON] = (1 - t) * arc
        row[1 + (r + 1) * N_LON : 1 + (r + 2) * N_LON] = t * arc
        return row

    regressor = np.stack([ring_row(ROOT_Y), ring_row(NECK_Y), ring_row(JAW_Y), 0 * on_head, 0 * on_head])
    regressor[3, eye_l] = regressor[4, eye_r] = 1.0 / nb

    # Shape: the eyeballs move rigidly (they stay spheres) with the skin in front of them, as real eyes sit in
    # their sockets: the eyelid landmarks then tell where the eyes are.
    at = verts.copy()
    at[eye_r], at[eye_l] = socket, socket * [-1, 1, 1]
    shapedirs = principal(smooth_fields(rng, at, n_shape, 0.25), 0.004 * np.arange(1, n_shape + 1) ** -0.6)
    # Expressions move the mouth, cheeks and jaw and end below the eyes: lids moving without the eyeballs
    # would make where the eyes are ambiguous (FLAME closes lids with its separate eyelid shapes).
    mouth = np.array([0.0, -0.035, 0.06])
    face = np.exp(-((verts - mouth) ** 2).sum(1) / (2 * 0.04**2)) * smoothstep(EYE[1] - 0.008, EYE[1] - 0.025, y)
    exprdirs = principal(
        smooth_fields(rng, verts, n_expr, 0.15) * face[:, None, None], 0.0015 / np.sqrt(np.arange(1, n_expr + 1))
    )
    # Pose correctives near the joint that drives them, the jaw's only where the jaw skins (FLAME's reach
    # further, but exact locality keeps the jaw test sharp); the eyes have none, as in FLAME.
    posedirs = np.zeros((len(verts), 3, 36))
    for first, mask, size in ((0, smoothstep(-0.02, -0.10, y) * on_head, 0.001), (9, jaw, 0.002)):
        fields = smooth_fields(rng, verts, 9, 0.2) * mask[:, None, None]
        posedirs[:, :, first : first + 9] = fields / np.abs(fields).max() * size

    # Landmarks and embeddings on the head's surface (never an eyeball: they turn with the gaze).
    static_faces, static_bary = front_hits(head, head_faces, ibug_static_xy())
    dynamic_faces, dynamic_bary = contour_embedding(head, head_faces)
    lids = [
        np.exp(-(((x - sx) / 0.012) ** 2 + ((y - EYE[1] - 0.008) / 0.008) ** 2) / 2) * on_head
        for sx in EYE[0] * np.array([1, -1])
    ]
    return {
        "v_template": verts,
        "shapedirs": shapedirs,
        "exprdirs": exprdirs,
        "posedirs": posedirs,
        "j_regressor": regressor,
        "lbs_weights": weights,
        "parents": np.array([-1, 0, 1, 1, 1]),
        "faces": faces,
        "uv_coords": uv,
        "uv_faces": uv_faces,
        "static_lmk_faces": static_faces,
        "static_lmk_bary": static_bary,
        "dynamic_lmk_faces": dynamic_faces,
        "dynamic_lmk_bary": dynamic_bary,
        # MediaPipe's points for iBUG 17..67 sit where those are (FLAME's own 105-point embedding is similar).
        "mediapipe_lmk_faces": static_faces,
        "mediapipe_lmk_bary": static_bary,
        "mediapipe_lmk_indices": MEDIAPIPE_TO_IBUG68[17:],
        # Eyelids close downwards by up to 8 mm over the upper half of each eye, as FLAME's l/r_eyelid.npy.
        "eyelid_left": np.outer(lids[0], [0.0, -0.008, 0.0]),
        "eyelid_right": np.outer(lids[1], [0.0, -0.008, 0.0]),
    }


def procedural_flame(seed: int = 0) -> FlameModel:
    """The procedural head as a validated FlameModel (make_model checks every array as for a real file)."""
    arrays = make_procedural_arrays(seed)
    return make_model(arrays, "procedural", source="procedural", description="procedural test head")


def exact_fit(model: FlameModel, head: dict, image_side: int = 512) -> PhotoFit:
    """A head from training.synthetic.sample_head as a perfect fit of a photo of it would describe it."""
    from facesmith.inference.flame.forward import flame_forward, landmarks68

    out = flame_forward(model, head["shape"], head["expression"], head["pose"])
    cam = head["camera"]
    ibug = cam.project(landmarks68(model, out)[0])
    span = ibug.max(0) - ibug.min(0)
    return PhotoFit(
        path="synthetic.png", image_size=(image_side, image_side), expression=head["expression"], pose=head["pose"],
        camera=cam, vertices=out.vertices[0], landmarks_px=ibug, landmark_names=tuple(f"ibug:{i}" for i in range(68)),
        residuals_px=np.zeros(68), model_landmarks68_px=ibug, face_size_px=float(np.sqrt(span[0] * span[1])),
        confidence=1.0, backend="synthetic", n_faces=1,
    )  # fmt: skip


def exact_result(model: FlameModel, head: dict, image_side: int = 512) -> FitResult:
    """exact_fit as the one photo of a FitResult."""
    from facesmith.inference.flame.forward import flame_forward

    neutral = flame_forward(model, head["shape"]).vertices[0]
    return FitResult(head["shape"], neutral, (exact_fit(model, head, image_side),), model.description, model.source)
