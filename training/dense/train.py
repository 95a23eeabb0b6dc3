"""Headless training of the dense-landmark network: `facesmith train --config CONFIG --out RUN_DIR`.

One process, or several under `torchrun --nproc_per_node N` (DistributedDataParallel; gloo on CPU, nccl on
GPU; each rank reads its own share of the shards). RUN_DIR receives `spec.json` (what the network predicts),
`config.toml` (a copy), `metrics.jsonl` (one line per log step and per validation), `loss.png`, and
`checkpoint.pt` (written atomically every `checkpoint_every` steps, at the end and on Ctrl-C/SIGTERM). Run it
again with the same RUN_DIR and it resumes from the checkpoint; a different config there is refused.

Config (TOML; paths relative to the current directory):

    [data]   train = "DIR", val = "DIR" (facesmith synth folders), val_images = 500, workers = 1,
             growing = false (train on the finished shards present, read again each pass: a folder that
             `facesmith synth` is still filling)
    [model]  input_size = 128, crop_scale = 1.6, widths = [16, 32, 64, 128, 192], hidden = 512, n_shape = 50,
             head = "fc" (the shipped DenseNet) | "heatmap" (HeatmapNet: integral regression),
             heatmap_stride = 4 | 8, decoder = 64 (heatmap channels),
             init = "" | an exported .onnx whose backbone (and fc head, for head "fc") starts the run
    [train]  steps, batch = 64 (per process), lr = 2e-3, weight_decay = 1e-4, warmup = 500,
             schedule = "cosine" (to 2 % of lr at `steps`) | "rsqrt" (lr / sqrt(1 + (step - warmup) /
             decay_steps): it does not depend on `steps`, so extending a run never raises the rate),
             decay_steps = 2000, ema = 0 (e.g. 0.999: validate, checkpoint and export an exponential moving
             average of the weights), loss = "nll" (Gaussian NLL of points and σ) | "distance" (mean point
             distance, plus the NLL of σ with the points held fixed), heatmap_weight = 0 (head "heatmap": the
             weight of HeatmapNet.heatmap_loss), beta_weight = 0.05, log_every = 25,
             val_every = 1000, checkpoint_every = 500, seed = 0, threads = 0

A single-process run also keeps `best.pt` (the best validation's state) and, when a validation error rises
ROLLBACK_RISE × above the best, goes back to it with half the rate (a `rollback` line in metrics.jsonl).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...inference.flame.model import FlameModel
from ...inference.landmarks.dense import DenseSpec, basis_hash, select_vertices
from ...inference.progress import ProgressBar
from .data import CropRule, ShardStream, shard_files
from .net import DenseNet, HeatmapNet, gaussian_nll, load_folded, point_distance_loss

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the weights (and optimizer, EMA) of the best validation so far: what a spiked run goes back to
# A validation error this many times the best so far means the run spiked (the CPU campaign's loss jumped from 3 % to
# 19 % within 25 steps at steps 4000 and 13,000, costing thousands of steps each): training goes back to the best
# weights with its rate scaled by ROLLBACK_LR (again at each further spike; kept in the checkpoint).
ROLLBACK_RISE = 1.3
ROLLBACK_LR = 0.5


@dataclass(frozen=True)
class DataConfig:
    train: str = ""
    val: str = ""
    val_images: int = 500
    workers: int = 1
    growing: bool = False


@dataclass(frozen=True)
class ModelConfig:
    input_size: int = 128
    crop_scale: float = 1.6
    widths: tuple[int, ...] = (16, 32, 64, 128, 192)
    hidden: int = 512
    n_shape: int = 50
    head: str = "fc"
    heatmap_stride: int = 4
    decoder: int = 64
    init: str = ""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 20000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 500
    schedule: str = "cosine"
    decay_steps: int = 2000
    ema: float = 0.0
    loss: str = "nll"
    heatmap_weight: float = 0.0
    beta_weight: float = 0.05
    log_every: int = 25
    val_every: int = 1000
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0  # torch CPU threads per process (0: torch's default)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _section(cls, values: dict, name: str, where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: [{name}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def config_from_dict(raw: dict, where: str = "config") -> Config:
    """A Config from TOML's (or a checkpoint's) nested dict; unknown sections or keys are errors."""
    unknown = sorted(set(raw) - {"data", "model", "train"})
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {', '.join(unknown)}; known: data, model, train")
    cfg = Config(
        _section(DataConfig, raw.get("data", {}), "data", where),
        _section(ModelConfig, raw.get("model", {}), "model", where),
        _section(TrainConfig, raw.get("train", {}), "train", where),
    )
    for value, name, known in ((cfg.model.head, "[model] head", HEADS), (cfg.train.schedule, "[train] schedule",
                               SCHEDULES), (cfg.train.loss, "[train] loss", LOSSES)):  # fmt: skip
        if value not in known:
            raise ValueError(f"{where}: {name} = {value!r}; known: {', '.join(known)}")
    return cfg


HEADS = ("fc", "heatmap")
SCHEDULES = ("cosine", "rsqrt")
LOSSES = ("nll", "distance")


def load_config(path: str | Path) -> Config:
    cfg = config_from_dict(tomllib.loads(Path(path).read_text()), str(path))
    if not cfg.data.train:
        raise ValueError(f'{path}: [data] train = "FOLDER" is required (a `facesmith synth` output)')
    if cfg.model.input_size % 2 ** len(cfg.model.widths):
        raise ValueError(f"{path}: input_size must be a multiple of 2^{len(cfg.model.widths)}")
    return cfg


def make_spec(model: FlameModel, cfg: Config, trained_on: str = "") -> DenseSpec:
    ids, rows = select_vertices(model)
    n_shape = min(cfg.model.n_shape, model.n_shape)
    return DenseSpec(
        tuple(int(i) for i in ids), tuple(int(r) for r in rows), cfg.model.input_size, cfg.model.crop_scale,
        n_shape, basis_hash(model, n_shape), model.n_vertices, trained_on,
    )  # fmt: skip


def build_net(spec: DenseSpec, cfg: Config) -> torch.nn.Module:
    m = cfg.model
    if m.head == "heatmap":
        return HeatmapNet(len(spec.vertex_ids), spec.n_shape, m.widths, m.input_size, m.decoder, m.heatmap_stride)
    return DenseNet(len(spec.vertex_ids), spec.n_shape, m.widths, m.input_size, m.hidden)


def crop_rule(spec: DenseSpec) -> CropRule:
    return CropRule(np.array(spec.vertex_ids), np.array(spec.ibug_rows), spec.input_size, spec.crop_scale,
                    spec.n_shape)  # fmt: skip


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2 % of the peak at `steps`, or (rsqrt) a decay that does not know
    the end: lr / sqrt(1 + (step - warmup) / decay_steps), never higher after `steps` is raised."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "rsqrt":
        return cfg.lr / math.sqrt(1 + (step - cfg.warmup) / max(cfg.decay_steps, 1))
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def point_losses(points, log_sigma, target, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, NLL for the log): "nll" the Gaussian NLL of points and σ together; "distance" the mean point
    distance (the validation metric) plus the NLL of σ around points held fixed (σ learns the error it
    cannot change), so a hard point is not given up by growing its σ."""
    nll = gaussian_nll(points, log_sigma, target)
    if kind == "nll":
        return nll, nll
    return point_distance_loss(points, target) + gaussian_nll(points.detach(), log_sigma, target), nll


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> tuple[Dist, torch.device]:
    """From torchrun's environment: gloo on CPU, nccl on CUDA. A plain run is world 1, no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return Dist(int(os.environ.get("RANK", "0")), world, local), device


def save_checkpoint(path: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, step: int, cfg: Config,
                    spec: DenseSpec, best: dict, ema: torch.nn.Module | None = None,
                    lr_scale: float = 1.0) -> None:  # fmt: skip
    """Atomically; with `ema`, its weights are saved as well (export takes them)."""
    tmp = path.with_name(path.name + ".tmp")
    state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "config": cfg.to_dict(),
             "spec": spec.to_json(), "last_val": best, "lr_scale": lr_scale}  # fmt: skip
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1 − decay)·net for parameters; buffers (BatchNorm statistics) copied."""
    for e, p in zip(ema.parameters(), net.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), net.buffers(), strict=True):
        e.copy_(b)


@torch.no_grad()
def init_from_onnx(net: torch.nn.Module, onnx_path: str | Path, crops: torch.Tensor) -> int:
    """Start `net` from an exported network's weights: its backbone (`features`: the .onnx's convolutions in
    order) and, for the fc head, the two fully connected layers. The exporter folded every BatchNorm into its
    convolution, so each BatchNorm is set to reproduce the folded layer in eval mode and re-centred on the
    statistics of `crops` (training crops), so that training-mode batch statistics change little at the
    start. Returns how many tensors were loaded."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    pairs = [(m[0], m[1]) for m in net.features.modules()
             if isinstance(m, torch.nn.Sequential) and len(m) >= 2 and isinstance(m[0], torch.nn.Conv2d)
             and isinstance(m[1], torch.nn.BatchNorm2d)]  # fmt: skip
    if len(pairs) > len(convs):
        raise ValueError(f"{onnx_path}: {len(convs)} convolutions, the backbone has {len(pairs)}")
    folded = [(weights[node.input[1]], weights[node.input[2]]) for node in convs[: len(pairs)]]
    if isinstance(net, DenseNet):  # the fc head first: load_folded's calibration pass runs the whole network
        for name in ("head.1.weight", "head.1.bias", "head.3.weight", "head.3.bias"):
            net.get_parameter(name).copy_(weights[name])
    try:
        load_folded(net, pairs, folded, crops)
    except ValueError as exc:
        raise ValueError(f"{onnx_path}: {exc}") from None
    return 2 * len(pairs) + (4 if isinstance(net, DenseNet) else 0)


def same_run(saved: dict, now: dict) -> bool:
    """A checkpoint resumes under the same config; only the step count may grow (or shrink) to extend a run."""
    strip = lambda c: {**c, "train": {k: v for k, v in c["train"].items() if k != "steps"}}  # noqa: E731
    return json.loads(json.dumps(strip(saved))) == json.loads(json.dumps(strip(now)))


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def compact_checkpoint(src: Path, dst: Path) -> None:
    """A run's checkpoint small enough to commit: the weights (and the EMA's) in float16, without the optimizer's
    state (a quarter of the size). A run resumed from it goes on from its step with Adam's moments started afresh
    (resume); the weights lose float16's precision, far below one training step's change."""
    ck = load_checkpoint(src)
    half = {
        name: {k: v.half() if v.is_floating_point() else v for k, v in ck[name].items()}
        for name in ("model", "ema") if name in ck
    }  # fmt: skip
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v for k, v in ck.items() if k != "optimizer"} | half, dst)


@torch.no_grad()
def validate(net: torch.nn.Module, loader, device: torch.device, ibug_rows: np.ndarray) -> dict:
    """Mean landmark error as a share of the crop side (all landmarks; the 68 iBUG rows) and of the face size
    (all; bench/dense.py's: the geometric mean of the 68 points' box sides), median predicted σ (crop side),
    and β RMSE, on exact (unjittered) crops."""
    net.eval()
    err_all, err_68, err_face, sig, beta_sq, n = 0.0, 0.0, 0.0, [], 0.0, 0
    for image, target, beta in loader:
        points, log_sigma, shape = net(image.to(device))
        d = torch.linalg.norm(points.cpu() - target, dim=-1) / 2  # crop units span 2
        box = target[:, ibug_rows].amax(1) - target[:, ibug_rows].amin(1)  # (N, 2) crop units
        face = torch.sqrt(box.prod(-1)) / 2  # crop sides
        err_all += float(d.mean(1).sum())
        err_face += float((d.mean(1) / face).sum())
        err_68 += float(d[:, ibug_rows].mean(1).sum())
        sig.append(torch.exp(log_sigma).cpu().flatten() / 2)
        if shape.shape[1]:
            beta_sq += float(((shape.cpu() - beta) ** 2).mean(1).sum())
        n += len(image)
    net.train()
    n = max(n, 1)
    return {"val_nme_all": err_all / n, "val_nme_68": err_68 / n, "val_nme_face": err_face / n,
            "val_sigma_median": float(torch.cat(sig).median()),
            "val_beta_rmse": math.sqrt(beta_sq / n), "val_images": n}  # fmt: skip


def plot_losses(metrics_path: Path, out: Path) -> None:
    """loss.png: training loss and validation errors against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_nme_all" in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        a.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8)
    a.set(xlabel="step", ylabel="loss (Gaussian NLL + β)", title="training")
    if val:
        for key in ("val_nme_all", "val_nme_68"):
            b.plot([r["step"] for r in val], [100 * r[key] for r in val], marker="o", label=key)
        b.legend()
    b.set(xlabel="step", ylabel="% of crop side", title="validation landmark error")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def train(cfg: Config, out: Path, model: FlameModel, config_text: str = "", log: Callable[[str], None] = print,
          stop: Callable[[], bool] = lambda: False, bar_stream=None) -> dict:  # fmt: skip
    """Train (or resume) into `out`; returns the last validation figures. `stop()` true ends the run early with
    a checkpoint (the CLI's Ctrl-C/SIGTERM). The progress bar goes to `bar_stream` (default stderr)."""
    dist, device = init_distributed()
    try:
        result = _train(cfg, out, model, config_text, log, stop, dist, device, bar_stream or sys.stderr)
        if dist.world > 1:
            # Rank 0 still validates, saves and plots after the last step; a rank that tore its gloo group down
            # meanwhile could abort at exit ("terminate called without an active exception", seen in CI).
            torch.distributed.barrier()
        return result
    finally:
        if dist.world > 1:
            torch.distributed.destroy_process_group()


def describe_data(folder: str) -> tuple[str, dict]:
    """One line on a `facesmith synth` folder (for the spec's `trained_on`), and its manifest (a growing folder
    without one yet: its shard count)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        shards = shard_files(folder, growing=True)
        return f"facesmith synth shards ({len(shards)} at the start, growing) from {folder}", {}
    manifest = json.loads(path.read_text())
    line = (f"{manifest.get('count', '?')} facesmith synth images (seed {manifest.get('seed', '?')}, "
            f"{manifest.get('image_size', '?')} px) from {folder}")  # fmt: skip
    return line, manifest


def resume(
    path: Path,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    cfg: Config,
    spec: DenseSpec,
    ema: torch.nn.Module | None = None,
) -> tuple[int, dict, float]:
    """Load a run's checkpoint into `net`, `opt` (and `ema`): (step, last validation figures, rate scale left by
    rollbacks); (0, {}, 1.0) without one."""
    if not path.is_file():
        return 0, {}, 1.0
    ck = load_checkpoint(path)
    if not same_run(ck["config"], cfg.to_dict()):
        raise ValueError(
            f"{path.parent} holds a run with another config (only [train] steps may change on resume); "
            "give another --out or the same config"
        )
    if DenseSpec.from_json(ck["spec"]).basis_hash != spec.basis_hash:
        raise ValueError(f"{path.parent} was trained for another FLAME basis")
    net.load_state_dict(ck["model"])  # float16 weights (compact_checkpoint) are copied into the float32 net
    if "optimizer" in ck:
        opt.load_state_dict(ck["optimizer"])
    if ema is not None:
        ema.load_state_dict(ck.get("ema", ck["model"]))
    return int(ck["step"]), ck.get("last_val", {}), float(ck.get("lr_scale", 1.0))


def _best_error(path: Path) -> float:
    """The validation error (val_nme_all) of a run's best.pt; infinite without one."""
    if not path.is_file():
        return math.inf
    return float(load_checkpoint(path).get("last_val", {}).get("val_nme_all", math.inf))


def loaders(cfg: Config, rule: CropRule, step: int, dist: Dist, device: torch.device):
    """The endless training loader of this rank, and (rank 0 only) the validation loader or None."""
    # A resumed run draws a fresh order (seed offset by the step), so it does not replay the same samples.
    growing = Path(cfg.data.train) if cfg.data.growing else None
    stream = ShardStream(shard_files(cfg.data.train, cfg.data.growing), rule, cfg.train.seed + step, dist.rank,
                         dist.world, train=True, folder=growing)  # fmt: skip
    train_loader = torch.utils.data.DataLoader(
        stream, batch_size=cfg.train.batch, num_workers=cfg.data.workers, pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.workers > 0,
    )  # fmt: skip
    if not (dist.main and cfg.data.val):
        return train_loader, None
    val = ShardStream(shard_files(cfg.data.val), rule, 0, train=False, limit=cfg.data.val_images)
    return train_loader, torch.utils.data.DataLoader(val, batch_size=64)


def _train(cfg, out, model, config_text, log, stop, dist: Dist, device, bar_stream) -> dict:
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    trained_on, manifest = describe_data(cfg.data.train)
    if manifest.get("model", {}).get("n_vertices", model.n_vertices) != model.n_vertices:
        raise ValueError(f"{cfg.data.train} was made with another FLAME mesh")
    spec = make_spec(model, cfg, trained_on)
    net = build_net(spec, cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    ema = copy.deepcopy(net).eval() if tc.ema else None
    step, last_val, lr_scale = resume(ckpt_path, net, opt, cfg, spec, ema)
    best_path = out / BEST
    best_error = _best_error(best_path)
    rule = crop_rule(spec)
    if not step and cfg.model.init:
        # Every rank starts from the same weights: the same crops (the first training shard, seeded) calibrate.
        files = shard_files(cfg.data.train, cfg.data.growing)
        crops = torch.stack([c for c, _, _ in itertools.islice(ShardStream(files[:1], rule, tc.seed), 64)])
        loaded = init_from_onnx(net, cfg.model.init, crops.to(device))
        if ema is not None:
            ema.load_state_dict(net.state_dict())
        if dist.main:
            log(f"started from {cfg.model.init} ({loaded} tensors)")
    if dist.main:
        if step:
            log(f"resuming {out} at step {step}/{tc.steps}")
        (out / "spec.json").write_text(spec.to_json())
        if config_text:
            (out / "config.toml").write_text(config_text)
    model_ddp = net
    if dist.world > 1:
        model_ddp = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    loader, val_loader = loaders(cfg, rule, step, dist, device)
    metrics = (out / "metrics.jsonl").open("a") if dist.main else None
    bar = ProgressBar(tc.steps, step, bar_stream) if dist.main else None
    ibug = np.array(spec.ibug_rows)
    t_log, seen = time.perf_counter(), 0
    net.train()
    try:
        batches = iter(loader)
        while step < tc.steps:
            if stop():
                if dist.main:
                    log(f"stopping at step {step}; run again with the same --out to resume")
                break
            image, target, beta = (t.to(device, non_blocking=True) for t in next(batches))
            for group in opt.param_groups:
                group["lr"] = lr_scale * learning_rate(step, tc)
            if tc.heatmap_weight and isinstance(net, HeatmapNet):
                points, log_sigma, shape, log_prob = model_ddp(image, heatmaps=True)
                hm_loss = net.heatmap_loss(log_prob, target)
            else:
                points, log_sigma, shape = model_ddp(image)
                hm_loss = torch.zeros((), device=device)
            point_loss, nll = point_losses(points, log_sigma, target, tc.loss)
            beta_loss = ((shape - beta) ** 2).mean() if spec.n_shape else torch.zeros((), device=device)
            loss = point_loss + tc.beta_weight * beta_loss + tc.heatmap_weight * hm_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            if ema is not None:  # warm-up (as TensorFlow's num_updates): early steps do not drag the start along
                update_ema(ema, net, min(tc.ema, (1 + step) / (10 + step)))
            step += 1
            seen += len(image) * dist.world
            if dist.main and (step % tc.log_every == 0 or step == tc.steps):
                now = time.perf_counter()
                with torch.no_grad():
                    nme = float(torch.linalg.norm(points - target, dim=-1).mean()) / 2
                row = {"step": step, "loss": loss.item(), "nll": nll.item(), "beta_mse": beta_loss.item(),
                       "heatmap_ce": hm_loss.item(), "train_nme_all": nme, "lr": opt.param_groups[0]["lr"],
                       "images_per_s": seen / max(now - t_log, 1e-9), "time": time.time()}  # fmt: skip
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
                bar.update(step, f"loss {row['loss']:.3f} err {100 * nme:.2f}% {row['images_per_s']:.0f} img/s")
                t_log, seen = now, 0
            if dist.main and val_loader is not None and (step % tc.val_every == 0 or step == tc.steps):
                last_val = {"step": step, **validate(net if ema is None else ema, val_loader, device, ibug)}
                metrics.write(json.dumps(last_val) + "\n")
                metrics.flush()
                log(f"step {step}: validation error {100 * last_val['val_nme_all']:.2f}% of the crop side, "
                    f"{100 * last_val['val_nme_face']:.2f}% of the face "
                    f"(68 points {100 * last_val['val_nme_68']:.2f}%), β RMSE {last_val['val_beta_rmse']:.3f}")  # fmt: skip
                error = last_val["val_nme_all"]
                if error < best_error:
                    best_error = error
                    save_checkpoint(best_path, net, opt, step, cfg, spec, last_val, ema, lr_scale)
                elif error > ROLLBACK_RISE * best_error and dist.world == 1:
                    # Multi-process runs (the GPU burst) do not roll back: the other ranks would need the decision.
                    back, _, _ = resume(best_path, net, opt, cfg, spec, ema)
                    lr_scale *= ROLLBACK_LR
                    metrics.write(json.dumps({"step": step, "rollback_to": back, "lr_scale": lr_scale}) + "\n")
                    log(f"step {step}: validation error {error / best_error:.2f} × the best (step {back}): back to "
                        f"its weights, rate × {lr_scale:g}")  # fmt: skip
            if dist.main and (step % tc.checkpoint_every == 0 or step == tc.steps):
                save_checkpoint(ckpt_path, net, opt, step, cfg, spec, last_val, ema, lr_scale)
    finally:
        if dist.main:
            save_checkpoint(ckpt_path, net, opt, step, cfg, spec, last_val, ema, lr_scale)
            bar.close()
            metrics.close()
            plot_losses(out / "metrics.jsonl", out / "loss.png")
    return {"step": step, **last_val}
