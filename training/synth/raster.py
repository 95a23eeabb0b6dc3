"""A vectorised numpy z-buffer rasteriser for small images of FLAME-sized meshes (about 10k triangles of a few
pixels each): every (triangle, pixel) candidate from the bounding boxes in one batch, barycentrics from edge
functions, the nearest per pixel by one sort. Pixel centres are at integer coordinates (as Camera.project)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CANDIDATES = 4_000_000  # bounding-box pixels in one image; more means a degenerate camera


@dataclass(frozen=True)
class Raster:
    triangle: np.ndarray  # (H, W) int32, -1 where no triangle covers the pixel
    bary: np.ndarray  # (H, W, 3) float32 screen-space barycentrics (zero off the mesh)
    depth: np.ndarray  # (H, W) float32 nearness (larger is nearer the camera); -inf off the mesh
    pixels: np.ndarray  # (M,) int64 flat indices of the covered pixels
    pixel_triangle: np.ndarray  # (M,) int32
    pixel_bary: np.ndarray  # (M, 3) float32


def rasterize(xy: np.ndarray, nearness: np.ndarray, faces: np.ndarray, height: int, width: int) -> Raster:
    """xy (V, 2) pixel positions, nearness (V,) larger = nearer the camera, faces (F, 3)."""
    xy = np.asarray(xy, np.float32)
    near = np.asarray(nearness, np.float32)
    tri = xy[faces]  # (F, 3, 2)
    lo = np.ceil(tri.min(1)).astype(np.int64)
    hi = np.floor(tri.max(1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], width - 1)
    hi[:, 1] = np.minimum(hi[:, 1], height - 1)
    bw = hi[:, 0] - lo[:, 0] + 1
    bh = hi[:, 1] - lo[:, 1] + 1
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    det = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok = (bw > 0) & (bh > 0) & (np.abs(det) > 1e-9)
    ids = np.nonzero(ok)[0]
    counts = bw[ids] * bh[ids]
    total = int(counts.sum())
    empty = Raster(
        np.full((height, width), -1, np.int32), np.zeros((height, width, 3), np.float32),
        np.full((height, width), -np.inf, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int32),
        np.zeros((0, 3), np.float32),
    )  # fmt: skip
    if total == 0 or total > MAX_CANDIDATES:
        return empty
    rep = np.repeat(np.arange(len(ids)), counts)
    start = np.cumsum(counts) - counts
    local = np.arange(total) - np.repeat(start, counts)
    t = ids[rep]
    w_rep = bw[t]
    px = lo[t, 0] + local % w_rep
    py = lo[t, 1] + local // w_rep
    inv = (1.0 / det[t]).astype(np.float32)
    fx = px.astype(np.float32) - c[t, 0]
    fy = py.astype(np.float32) - c[t, 1]
    l0 = ((b[t, 1] - c[t, 1]) * fx + (c[t, 0] - b[t, 0]) * fy) * inv
    l1 = ((c[t, 1] - a[t, 1]) * fx + (a[t, 0] - c[t, 0]) * fy) * inv
    l2 = 1.0 - l0 - l1
    eps = -1e-5
    inside = (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
    t, px, py, l0, l1, l2 = t[inside], px[inside], py[inside], l0[inside], l1[inside], l2[inside]
    f = faces[t]
    d = l0 * near[f[:, 0]] + l1 * near[f[:, 1]] + l2 * near[f[:, 2]]
    key = py * width + px
    order = np.lexsort((-d, key))  # by pixel, nearest first
    key = key[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    sel = order[first]
    pix = key[first]
    triangle = np.full(height * width, -1, np.int32)
    triangle[pix] = t[sel]
    bary = np.zeros((height * width, 3), np.float32)
    pb = np.stack([l0[sel], l1[sel], l2[sel]], 1).astype(np.float32)
    bary[pix] = pb
    depth = np.full(height * width, -np.inf, np.float32)
    depth[pix] = d[sel]
    return Raster(
        triangle.reshape(height, width), bary.reshape(height, width, 3), depth.reshape(height, width), pix,
        t[sel].astype(np.int32), pb,
    )  # fmt: skip
