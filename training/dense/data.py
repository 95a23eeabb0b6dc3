"""Training samples from `facesmith synth` shards: the crop the network sees, its landmarks in crop units, β.

The crop follows the inference rule (`inference.landmarks.dense.crop_box` around the 68 iBUG vertices'
projections) with jitter in scale and position, because at inference the first crop comes from a detector
whose 68 points are not FLAME's. Shards are read one at a time (a few tens of MB), in an order drawn per
(seed, rank, loader worker, pass), so several processes never hold the whole set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ...inference.landmarks.dense import crop_box, crop_image, to_crop_units

# Crop jitter in training, because at inference the first crop comes from a detector's points, not FLAME's.
SCALE_JITTER = 0.10  # log-normal σ of the crop side
SHIFT_JITTER = 0.06  # normal σ of the centre, fraction of the side


def jittered_box(
    points68: np.ndarray, crop_scale: float, rng: np.random.Generator | None, scale_jitter: float = SCALE_JITTER,
    shift_jitter: float = SHIFT_JITTER,
) -> tuple[float, float, float]:  # fmt: skip
    """The inference crop box (crop_box) around 68 points, jittered in size and position; no rng: exact."""
    cx, cy, side = crop_box(points68, crop_scale)
    if rng is not None:
        side *= float(np.exp(rng.normal(0, scale_jitter)))
        cx, cy = cx + rng.normal(0, shift_jitter) * side, cy + rng.normal(0, shift_jitter) * side
    return cx, cy, side


@dataclass(frozen=True)
class CropRule:
    vertex_ids: np.ndarray
    ibug_rows: np.ndarray
    input_size: int
    crop_scale: float
    n_shape: int
    scale_jitter: float = SCALE_JITTER
    shift_jitter: float = SHIFT_JITTER


def shard_files(folder: str | Path, growing: bool = False) -> list[Path]:
    """The manifest's shards; with `growing`, the finished shards present instead (a `facesmith synth` that
    is still writing the folder, or one stopped before its manifest: training can start on what is there)."""
    folder = Path(folder)
    manifest = folder / "manifest.json"
    if growing:
        files = sorted(f for f in folder.glob("shard_*.npz") if not f.name.endswith(".tmp.npz"))
    elif not manifest.is_file():
        raise FileNotFoundError(f"{folder}: no manifest.json (make the data with `facesmith synth --out {folder}`)")
    else:
        names = json.loads(manifest.read_text())["shards"]
        files = [folder / n for n in names if (folder / n).is_file()]
    if not files:
        raise FileNotFoundError(f"{folder}: no shards there (make the data with `facesmith synth --out {folder}`)")
    return files


def sample(image: np.ndarray, vertices_px: np.ndarray, shape: np.ndarray, rule: CropRule,
           rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(crop (3, S, S) float32, landmarks (L, 2) crop units, β (n_shape,)). No rng: the exact crop."""
    pts = vertices_px[rule.vertex_ids].astype(np.float64)
    box = jittered_box(pts[rule.ibug_rows], rule.crop_scale, rng, rule.scale_jitter, rule.shift_jitter)
    beta = np.zeros(rule.n_shape, np.float32)
    beta[: min(rule.n_shape, len(shape))] = shape[: rule.n_shape]
    return crop_image(image, box, rule.input_size), to_crop_units(pts, box).astype(np.float32), beta


class ShardStream(IterableDataset):
    """Endless (training: shuffled, jittered) or one pass (validation: in order, exact crops) over shards.
    With `folder`, the shard list is read again at each pass (a folder that `facesmith synth` still fills)."""

    def __init__(self, files: list[Path], rule: CropRule, seed: int, rank: int = 0, world: int = 1,
                 train: bool = True, limit: int = 0, folder: Path | None = None) -> None:  # fmt: skip
        super().__init__()
        self.files, self.rule, self.seed, self.rank, self.world = files, rule, seed, rank, world
        self.train, self.limit, self.folder = train, limit, folder

    def _mine(self) -> tuple[list[Path], int]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        part = self.rank * workers + worker
        parts = self.world * workers
        files = self.files[part::parts] if len(self.files) >= parts else self.files
        return files, part

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        files, part = self._mine()
        done, epoch = 0, 0
        while True:
            if epoch and self.folder is not None:
                self.files = shard_files(self.folder, growing=True)
                files, part = self._mine()
            rng = np.random.default_rng([self.seed, part, epoch])
            order = rng.permutation(len(files)) if self.train else range(len(files))
            for k in order:
                with np.load(files[k]) as z:
                    images, vpx, shapes = z["images"], z["vertices_px"], z["shape"]
                idx = rng.permutation(len(images)) if self.train else range(len(images))
                for i in idx:
                    crop, pts, beta = sample(images[i], vpx[i], shapes[i], self.rule, rng if self.train else None)
                    yield torch.from_numpy(crop), torch.from_numpy(pts), torch.from_numpy(beta)
                    done += 1
                    if self.limit and done >= self.limit:
                        return
            if not self.train:
                return
            epoch += 1
