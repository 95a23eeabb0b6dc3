"""Glasses drawn over a synthetic face as real ones look in photos: a frame in 3-D in front of the eyes
(rounded-rectangle to oval lens rims, thin metal to thick acetate, sometimes a heavier top rim or no bottom rim),
a bridge, temples running back to the ears behind the head's outline, lenses that tint, magnify or shrink what is
behind them and catch a glare, and the frame's shadow on the skin.

The first glasses (two thin elliptical rims of 1-3 px and a straight bridge) taught the occluder network nothing
that transfers: on real photos it took thick black frames, temples and lens glare for skin (P(not skin) < 0.1 on
most of a frame), and the colour model, gated by the network, left them in the albedo. Real frames are 1-6 mm
thick, their temples cross the temples and cheeks, and their shadow and glare cover more skin than the frame.

Labels: the frame, the temples, opaque (sun) lenses, strong glare and a dark enough shadow are occluders (not skin:
they must not reach the albedo); a clear lens is not (the skin is seen through it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

SHARE = 0.3  # of the images with glasses: about as often as photos show them, and often enough to learn them
SUN_SHARE = 0.1  # of those, sunglasses (opaque lenses)
OCCLUDER_SHADOW = 0.2  # a frame's shadow darker than this (share of the light taken) is labelled an occluder
OCCLUDER_GLARE = 0.35  # a glare brighter than this (share of the way to white) is labelled an occluder


@dataclass(frozen=True)
class Frame:
    """One pair of glasses, in metres and the eyes' width."""

    half_width: float  # of each lens rim, × the distance between the eyes
    half_height_top: float  # above the lens centre, × the eyes' distance
    half_height_bottom: float  # below it
    squareness: float  # superellipse exponent: 2 an ellipse, 5 nearly a rectangle
    lift: float  # lens centres above the eyes' centres, × the eyes' distance
    spread: float  # lens centres outward of the eyes' centres, × the eyes' distance
    ahead: float  # metres in front of the eyeballs' centres
    thickness: float  # metres (the frame's face-on width)
    top_factor: float  # the top rim's thickness × thickness (browline frames)
    bottom_rim: bool  # False: half-rim frames
    colour: tuple[float, float, float]  # sRGB 0-1
    highlight: bool  # a light line along the top rim (the frame's own specular)


def sample_frame(rng: np.random.Generator) -> Frame:
    """A random pair of glasses: mostly dark acetate, some metal, some coloured."""
    top = rng.uniform(0.22, 0.36)
    style = rng.random()
    if style < 0.55:  # dark acetate or plastic
        colour = rng.uniform(0.0, 0.12, 3) + np.array([0.04, 0.02, 0.0]) * rng.uniform(0, 2)
        thickness = np.exp(rng.uniform(np.log(0.0015), np.log(0.006)))
    elif style < 0.8:  # thin metal: gold, silver or gunmetal
        base = [(0.78, 0.64, 0.36), (0.75, 0.75, 0.76), (0.35, 0.35, 0.38)][int(rng.integers(3))]
        colour = np.asarray(base) * rng.uniform(0.7, 1.1)
        thickness = rng.uniform(0.0007, 0.0015)
    else:  # any colour
        colour = rng.uniform(0, 1, 3) * rng.uniform(0.3, 1.0)
        thickness = np.exp(rng.uniform(np.log(0.001), np.log(0.005)))
    return Frame(
        half_width=rng.uniform(0.36, 0.5), half_height_top=top, half_height_bottom=top * rng.uniform(0.8, 1.3),
        squareness=rng.uniform(2.0, 5.0), lift=rng.uniform(-0.02, 0.08), spread=rng.uniform(0.0, 0.06),
        ahead=rng.uniform(0.012, 0.02), thickness=float(thickness),
        top_factor=rng.uniform(1.5, 2.5) if rng.random() < 0.25 else 1.0, bottom_rim=rng.random() > 0.15,
        colour=tuple(float(c) for c in np.clip(colour, 0, 1)), highlight=rng.random() < 0.5,
    )  # fmt: skip


def rim_points(frame: Frame, centre: np.ndarray, outward: np.ndarray, up: np.ndarray, width: float,
               angles: np.ndarray) -> np.ndarray:  # fmt: skip
    """(K, 3) points of one lens rim (a superellipse) at `angles` (0 outward, π/2 up)."""
    c, s = np.cos(angles), np.sin(angles)
    e = 2.0 / frame.squareness
    x = np.sign(c) * np.abs(c) ** e * frame.half_width * width
    y = np.sign(s) * np.abs(s) ** e * np.where(s > 0, frame.half_height_top, frame.half_height_bottom) * width
    return centre + np.outer(x, outward) + np.outer(y, up)


def to_fixed(xy: np.ndarray) -> np.ndarray:
    """Pixels -> OpenCV's 2-bit fixed point polyline coordinates."""
    return np.round(xy * 4).astype(np.int32)


def visible_runs(xy: np.ndarray, near: np.ndarray, depth: np.ndarray, tol: float = 0.003) -> list[np.ndarray]:
    """Runs of consecutive points in front of the head (or off it): a temple disappears behind the head."""
    n = depth.shape[0]
    ij = np.round(xy).astype(np.int64)
    inside = ((ij >= 0) & (ij < n)).all(axis=1)
    ijc = np.clip(ij, 0, n - 1)
    behind = depth[ijc[:, 1], ijc[:, 0]]
    shown = inside & (~np.isfinite(behind) | (near >= behind - tol))
    return [xy[i : j + 1] for i, j in _runs(shown) if j > i]


def refract(img: np.ndarray, lens: np.ndarray, centre_px: np.ndarray, power: float) -> None:
    """What is behind a lens, scaled about its centre by `power` (< 1: a myope's lens shrinks the eye), in place."""
    n = img.shape[0]
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
    mx = (centre_px[0] + (xs - centre_px[0]) / power).astype(np.float32)
    my = (centre_px[1] + (ys - centre_px[1]) / power).astype(np.float32)
    warped = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img[:] = img * (1 - lens[..., None]) + warped * lens[..., None]


def glare(rng: np.random.Generator, lens: np.ndarray, n: int) -> np.ndarray:
    """(n, n) soft reflection of a window or a lamp on a lens: an ellipse or a band, 0-1."""
    ys, xs = np.nonzero(lens > 0.5)
    layer = np.zeros((n, n), np.float32)
    if len(xs) < 4:
        return layer
    k = int(rng.integers(len(xs)))
    span = max(np.ptp(xs), np.ptp(ys), 2)
    axes = (max(1, int(span * rng.uniform(0.1, 0.45))), max(1, int(span * rng.uniform(0.05, 0.25))))
    cv2.ellipse(layer, (int(xs[k]), int(ys[k])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.5, span * rng.uniform(0.02, 0.08)))
    return layer * lens


@dataclass(frozen=True)
class Placed:
    """A pair of glasses placed on one head: each rim's outline and centre (pixels), the points where the bridge and
    the temples meet the rims and each side's outward direction (metres, head frame), the eyes' distance (metres)
    and the frame's line width (pixels)."""

    rims: list[np.ndarray]
    centres_px: list[np.ndarray]
    inner: list[np.ndarray]
    outer: list[np.ndarray]
    outwards: list[np.ndarray]
    width: float
    thick: int


RIM_ANGLES = np.linspace(0, 2 * np.pi, 64, endpoint=False)  # where each rim's outline is sampled
RIM_TOP = np.sin(RIM_ANGLES) > 0  # the upper half of a rim


def place_frame(frame: Frame, eye_centres: np.ndarray, head_rot: np.ndarray, project: Callable) -> Placed:
    """The frame over the eyes (see draw_glasses for the arguments)."""
    width = float(np.linalg.norm(eye_centres[1] - eye_centres[0]))
    ex, up, fwd = head_rot[:, 0], head_rot[:, 1], head_rot[:, 2]
    middle = eye_centres.mean(axis=0)
    p0, _ = project(middle[None])
    p1, _ = project((middle + ex * 0.01)[None])
    px_per_m = float(np.linalg.norm(p1 - p0)) / 0.01
    placed = Placed([], [], [], [], [], width, max(1, int(round(frame.thickness * px_per_m))))
    for c in eye_centres:
        outward = ex * np.sign((c - middle) @ ex or 1.0)
        placed.outwards.append(outward)
        centre = c + fwd * frame.ahead + up * frame.lift * width + outward * frame.spread * width
        placed.rims.append(project(rim_points(frame, centre, outward, up, width, RIM_ANGLES))[0])
        placed.centres_px.append(project(centre[None])[0][0])
        placed.inner.append(rim_points(frame, centre, outward, up, width, np.array([np.pi - 0.45]))[0])
        placed.outer.append(rim_points(frame, centre, outward, up, width, np.array([0.3]))[0])
    return placed


def frame_front(
    frame: Frame, placed: Placed, head_rot: np.ndarray, project: Callable, depth: np.ndarray, n: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(n, n) coverage of the rims and bridge, and of those with the temples (hidden behind the head)."""
    up, fwd = head_rot[:, 1], head_rot[:, 2]
    width, thick = placed.width, placed.thick
    shape = np.zeros((n, n), np.float32)  # the front of the frame: rims and bridge
    for xy in placed.rims:
        ring = np.r_[xy, xy[:1]]
        upper = np.r_[RIM_TOP, RIM_TOP[:1]]
        for part, factor in ((upper, frame.top_factor), (~upper, 1.0 if frame.bottom_rim else 0.0)):
            if factor > 0:
                # One point more at each end: the top and bottom runs meet instead of leaving gaps at the sides.
                runs = [ring[max(i - 1, 0) : j + 2] for i, j in _runs(part)]
                cv2.polylines(shape, [to_fixed(r) for r in runs], False, 1.0,
                              max(1, int(round(thick * factor))), cv2.LINE_AA, shift=2)  # fmt: skip
    t = np.linspace(0, 1, 12)[:, None]
    arch = placed.inner[0] * (1 - t) + placed.inner[1] * t + up * (0.08 * width) * np.sin(np.pi * t) + fwd * 0.004
    bridge, _ = project(arch)
    cv2.polylines(shape, [to_fixed(bridge)], False, 1.0, thick, cv2.LINE_AA, shift=2)
    temples = np.zeros((n, n), np.float32)
    for point, outward in zip(placed.outer, placed.outwards, strict=True):
        s = np.linspace(0, 1, 40)[:, None]
        path = point + (-fwd) * 0.1 * s + outward * 0.01 * s - up * 0.006 * s
        xy, near = project(path)
        runs = visible_runs(xy, near, depth)
        if runs:
            cv2.polylines(temples, [to_fixed(r) for r in runs], False, 1.0, max(1, int(round(thick * 0.8))),
                          cv2.LINE_AA, shift=2)  # fmt: skip
    return shape, np.clip(shape + temples, 0, 1)


def cast_shadow(img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, front: np.ndarray, skin: np.ndarray,
                thick: int) -> None:  # fmt: skip
    """The frame's shadow on the skin, away from the light (mostly below the frame: light from above), in place."""
    n = img.shape[0]
    angle = rng.normal(np.pi / 2, 0.7)
    shift = rng.uniform(0.5, 2.5) * thick + rng.uniform(1, 4)
    m = np.float32([[1, 0, shift * np.cos(angle)], [0, 1, shift * np.sin(angle)]])
    shadow = cv2.warpAffine(front, m, (n, n))
    shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.5, 2.0)) * rng.uniform(0.3, 0.7)
    shadow *= skin
    img *= 1 - shadow[..., None]
    occ[:] = np.maximum(occ, (shadow > OCCLUDER_SHADOW).astype(np.float32))


def draw_lenses(img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, placed: Placed) -> None:
    """The lenses, in place: clear (refracting the eyes, faintly tinted) or sun lenses (occluders), perhaps a glare."""
    n = img.shape[0]
    lens = np.zeros((n, n), np.float32)
    for xy in placed.rims:
        cv2.fillPoly(lens, [to_fixed(xy)], 1.0, cv2.LINE_AA, shift=2)
    sun = rng.random() < SUN_SHARE
    if not sun and rng.random() < 0.6:
        power = rng.uniform(0.85, 1.08)
        for xy, centre in zip(placed.rims, placed.centres_px, strict=True):
            one = np.zeros((n, n), np.float32)
            cv2.fillPoly(one, [to_fixed(xy)], 1.0, cv2.LINE_AA, shift=2)
            refract(img, one, centre, power)
    tint = rng.uniform(0, 0.2, 3) if sun else rng.uniform(0.6, 1.0, 3)
    alpha = rng.uniform(0.85, 0.97) if sun else rng.uniform(0.02, 0.15)
    img[:] = img * (1 - lens[..., None] * alpha) + tint * lens[..., None] * alpha
    if sun:
        occ[:] = np.maximum(occ, lens)
    if rng.random() < 0.35:
        shine = glare(rng, lens, n) * rng.uniform(0.3, 0.9)
        colour = np.clip(1 - rng.uniform(0, 0.1, 3), 0, 1)
        img[:] = img + (colour - img) * shine[..., None]
        occ[:] = np.maximum(occ, (shine > OCCLUDER_GLARE).astype(np.float32))


def paint_frame(img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, frame: Frame, placed: Placed,
                shape: np.ndarray, front: np.ndarray) -> None:  # fmt: skip
    """The frame over everything, in place, with a highlight along the rims' tops on some; all of it an occluder."""
    n, thick = img.shape[0], placed.thick
    colour = np.asarray(frame.colour, np.float32)
    img[:] = img * (1 - front[..., None]) + colour * front[..., None]
    if frame.highlight and thick >= 2:
        line = np.zeros((n, n), np.float32)
        for xy in placed.rims:
            lift = np.float32([0, -0.3 * thick])
            cv2.polylines(line, [to_fixed(xy[RIM_TOP] + lift)], False, 1.0, max(1, thick // 3), cv2.LINE_AA, shift=2)
        line *= shape * rng.uniform(0.3, 0.6)
        img[:] = img + (1 - img) * line[..., None]
    occ[:] = np.maximum(occ, front)


def draw_glasses(
    img: np.ndarray, occ: np.ndarray, rng: np.random.Generator, eye_centres: np.ndarray, head_rot: np.ndarray,
    project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], depth: np.ndarray, skin: np.ndarray,
) -> None:  # fmt: skip
    """Glasses over the image (sRGB float, (n, n, 3)) in place; their occluder pixels into `occ` (n, n).

    `eye_centres` (2, 3) metres; `head_rot` the head's rotation (columns: its x, y (up), z (forward) axes);
    `project` maps (K, 3) points to (pixels (K, 2), nearness (K,)); `depth` the head's z-buffer (nearness,
    -inf off the head); `skin` (n, n) bool, where the frame's shadow can fall. The random draws come in a fixed
    order (frame, shadow, lenses, highlight), so a seed gives the same glasses."""
    if float(np.linalg.norm(eye_centres[1] - eye_centres[0])) < 1e-6:
        return
    frame = sample_frame(rng)
    placed = place_frame(frame, eye_centres, head_rot, project)
    shape, front = frame_front(frame, placed, head_rot, project, depth, img.shape[0])
    if rng.random() < 0.5:
        cast_shadow(img, occ, rng, front, skin, placed.thick)
    draw_lenses(img, occ, rng, placed)
    paint_frame(img, occ, rng, frame, placed, shape, front)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index pairs of the runs of True in a 1-D mask."""
    runs, start = [], None
    for k, ok in enumerate([*mask, False]):
        if ok and start is None:
            start = k
        elif not ok and start is not None:
            runs.append((start, k - 1))
            start = None
    return runs
