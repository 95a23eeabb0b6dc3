"""A small segmentation network for the texture's occluder masks: which pixels of a face crop are not skin (hair, hands, glasses,
objects, background), trained on `facesmith synth` renders (their segment maps), exported to ONNX for
inference/texture/occlusion.py.

Input: the dense network's crop (inference.landmarks.dense.crop_box around the 68 points, 128², RGB 0..1), with
the same jitter the landmark network trained with (at inference the crop comes from detected points). Target per
pixel: 1 for background, hair and occluders (segment labels 0, 3, 5), 0 for skin, eyes and the mouth's inside
(1, 2, 4: the eyes and the mouth have their own masks in the bake). A U-Net of four stride-2 stages (16-24-48-64
channels) and bilinear upsampling with skips; binary cross-entropy. About 0.2 M parameters.

    python -m facesmith.training.occluders train --data .cache/dense/train --val .cache/dense/val --out RUN [--steps N]
    python -m facesmith.training.occluders export RUN -o assets/occluder_seg.onnx

Training resumes from RUN/checkpoint.pt (written atomically every `--every` steps); RUN/metrics.jsonl has the
loss and, at each checkpoint, the validation IoU of not-skin and the share of occluder pixels (label 5) found.
`--init RUN1 --cutouts people_cutouts.npz` fine-tunes with real-hair fringes pasted over the forehead; `--hands`
adds hand-like shapes cut from other rendered heads' cheeks (of contrasting tone: a light hand on dark skin).
`--init assets/occluder_seg.onnx` fine-tunes the shipped network itself (its run folder need not exist:
load_onnx_weights unfolds the export's batch norms), as the glasses fine-tune did (assets/README.md).
The data must be made without non-commercial sources (the shards' manifest says so; checked here).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..inference.landmarks.dense import CROP_SCALE, crop_image, crop_matrix
from ..inference.texture.occlusion import SEG_METADATA_KEY
from .dense.data import jittered_box, shard_files
from .dense.net import INPUT_MEAN, INPUT_STD, conv_bn, load_folded

SIZE = 128
NOT_SKIN = (0, 3, 5)  # background, hair, occluder (training/synth/engine.py SEGMENTS)
OCCLUDER = 5
CHECKPOINT = "checkpoint.pt"
FRINGE_SHARE = 0.3  # of training crops that get a real-hair fringe (with --cutouts)
HAND_SHARE = 0.25  # ... that get a hand of another head's skin (with --hands)
HAIR_COLOUR_RADIUS = 0.2  # sRGB 0..1: a cut-out's pixels this close to its measured hair colour are hair


def ibug_vertex_ids(flame: str | None) -> np.ndarray:
    """The FLAME vertices nearest the 68 iBUG points of the model the data was rendered with (the crop rule)."""
    import dataclasses

    from ..inference.landmarks.dense import ibug_vertices
    from ..inference.options import DEFAULTS
    from ..inference.pipeline import load_pipeline_model

    return ibug_vertices(load_pipeline_model(dataclasses.replace(DEFAULTS, flame_path=flame or "")))


def hair_fringe(
    crop: np.ndarray, target: np.ndarray, eyes: np.ndarray, cutouts: dict, rng: np.random.Generator
) -> None:  # fmt: skip
    """Paste a real person's hair (the band above the forehead of a CC BY cut-out) down over the crop's forehead, in
    place: a dense fringe with a ragged edge, labelled not-skin. `eyes` (2, 2) crop pixels; the rendered hair caps
    and strands alone taught the network little about real fringes."""
    import cv2

    k = int(rng.integers(len(cutouts["rgba"])))
    rgba, (e0, e1) = cutouts["rgba"][k].astype(np.float32) / 255, cutouts["eyes"][k]
    # Hair only: near the person's hair colour (the cut-out also holds forehead skin, ears, neck and clothes).
    hair_like = (np.linalg.norm(rgba[..., :3] - cutouts["hair"][k], axis=-1) < HAIR_COLOUR_RADIUS).astype(np.uint8)
    hair_like = cv2.morphologyEx(hair_like, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # highlights between strands
    iod_c, iod = float(np.linalg.norm(e1 - e0)), float(np.linalg.norm(eyes[1] - eyes[0]))
    if iod_c < 4 or iod < 4:
        return
    mid_c, mid = (e0 + e1) / 2, eyes.mean(0)
    h = rgba.shape[0]
    # ... and above a ragged line over the cut-out's forehead.
    cols = np.arange(rgba.shape[1])
    edge = mid_c[1] - iod_c * (0.9 + 0.15 * np.sin(cols / (iod_c * rng.uniform(0.08, 0.25)) + rng.uniform(0, 6)))
    alpha = cv2.GaussianBlur(rgba[..., 3] * hair_like * (np.arange(h)[:, None] < edge[None, :]), (0, 0), 0.7)
    # The similarity taking the cut-out's eyes (image right, left) onto the crop's (image left, right: iBUG 36-41
    # first), moved down the face by `down`: how far the hair comes over the forehead.
    v_c, v = e0 - e1, eyes[1] - eyes[0]
    turn = np.arctan2(v[1], v[0]) - np.arctan2(v_c[1], v_c[0])
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    down = rot @ np.array([0.0, iod * rng.uniform(0.35, 0.95)])
    lin = iod / iod_c * rot
    a = np.c_[lin, mid + down - lin @ mid_c].astype(np.float32)
    size = crop.shape[1]
    layer = cv2.warpAffine(np.dstack([rgba[..., :3], alpha]), a, (size, size), flags=cv2.INTER_LINEAR)
    w = layer[..., 3]
    crop[:] = crop * (1 - w) + layer[..., :3].transpose(2, 0, 1) * w
    target[:] = np.maximum(target, (w > 0.5).astype(np.float32))


def skin_hand(crop: np.ndarray, target: np.ndarray, eyes: np.ndarray, skins: list, rng: np.random.Generator) -> None:
    """Paste a hand-like shape (a palm and up to four fingers at a random angle) cut from another head's cheek skin
    (`skins`, cheek_patch), of the most contrasting tone among a few drawn, over the crop, in place, labelled
    not-skin: the rendered hands and objects alone did not teach the network a light hand over dark skin (skin on
    skin). `eyes` (2, 2) crop pixels."""
    import cv2

    size = crop.shape[1]
    iod = float(np.linalg.norm(eyes[1] - eyes[0]))
    if iod < 4 or not skins or not (target < 0.5).any():
        return
    own = float(np.median(crop.mean(0)[target < 0.5]))
    drawn = [skins[int(k)] for k in rng.integers(len(skins), size=4)]
    patch = max(drawn, key=lambda q: abs(float(q.mean()) - own))
    shape = np.zeros((size, size), np.uint8)
    centre = eyes.mean(0) + np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 1.4)]) * iod
    axes = (int(iod * rng.uniform(0.35, 0.7)), int(iod * rng.uniform(0.3, 0.55)))
    cv2.ellipse(shape, tuple(int(v) for v in centre), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    heading = rng.uniform(0, 2 * np.pi)
    for k in range(int(rng.integers(0, 5))):
        angle = heading + (k - 1.5) * rng.uniform(0.1, 0.3)
        tip = centre + rng.uniform(0.6, 1.2) * iod * np.array([np.cos(angle), np.sin(angle)])
        width = max(2, int(iod * rng.uniform(0.15, 0.25)))
        cv2.line(shape, tuple(int(v) for v in centre), tuple(int(v) for v in tip), 1, width)
    skin = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
    ramp = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.2), size, dtype=np.float32)
    skin = np.clip(skin * (ramp[None, :, None] if rng.random() < 0.5 else ramp[None, None, :]), 0, 1)
    w = cv2.GaussianBlur(shape.astype(np.float32), (0, 0), 0.7)
    crop[:] = crop * (1 - w) + skin * w
    target[:] = np.maximum(target, (w > 0.5).astype(np.float32))


def cheek_patch(image: np.ndarray, segment: np.ndarray, points68: np.ndarray) -> np.ndarray | None:
    """(h, w, 3) sRGB 0..1: a render's skin under its image-left eye, from the eye's width and down to the nose's
    base; None where that is not all skin (hair, an occluder, a turned head)."""
    x0, x1 = int(points68[36, 0]), int(points68[39, 0])
    y0, y1 = int(points68[40:42, 1].max()) + 2, int(points68[33, 1])
    if x1 - x0 < 6 or y1 - y0 < 6 or x0 < 0 or y0 < 0:
        return None
    if (segment[y0:y1, x0:x1] != 1).mean() > 0.02:
        return None
    return image[y0:y1, x0:x1].astype(np.float32) / 255


def crop_pair(
    image: np.ndarray, segment: np.ndarray, points68: np.ndarray, rng: np.random.Generator | None,
    cutouts: dict | None = None, skins: list | None = None,
):  # fmt: skip
    """(crop (3, S, S) float32, target (S, S) float32 1 = not skin, occluder (S, S) bool)."""
    import cv2

    box = jittered_box(points68, CROP_SCALE, rng)  # as the dense network's crops
    a = crop_matrix(box, SIZE)
    seg = cv2.warpAffine(segment, a, (SIZE, SIZE), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)  # fmt: skip
    crop = crop_image(image, box, SIZE)
    target, occluder = np.isin(seg, NOT_SKIN).astype(np.float32), seg == OCCLUDER
    eyes = np.array([points68[36:42].mean(0), points68[42:48].mean(0)]) @ a[:, :2].T + a[:, 2]
    if rng is not None and cutouts is not None and rng.random() < FRINGE_SHARE:
        hair_fringe(crop, target, eyes, cutouts, rng)
    if rng is not None and skins and rng.random() < HAND_SHARE:
        skin_hand(crop, target, eyes, skins, rng)
    occluder = occluder | (target > 0.5) & (seg != 0) & (seg != 3)  # what was pasted over the head
    if rng is not None and rng.random() < 0.5:  # faces are near-symmetric; occluders are not
        crop, target, occluder = crop[:, :, ::-1].copy(), target[:, ::-1].copy(), occluder[:, ::-1].copy()
    return crop, target, occluder


def stream(
    files: list[Path], ids: np.ndarray, seed: int, train: bool, limit: int = 0, cutouts: dict | None = None,
    hands: bool = False,
) -> Iterator[tuple]:  # fmt: skip
    """Endless shuffled jittered samples (train; with real-hair fringes when `cutouts` are given) or one ordered
    pass of exact crops."""
    rng, done = np.random.default_rng(seed), 0
    while True:
        for k in rng.permutation(len(files)) if train else range(len(files)):
            with np.load(files[k]) as z:
                images, segs, vpx = z["images"], z["segment"], z["vertices_px"]
            skins = None  # other heads' cheeks in this shard, for the hands
            if hands and train:
                found = (cheek_patch(images[j], segs[j], vpx[j][ids]) for j in rng.permutation(len(images))[:64])
                skins = [p for p in found if p is not None]
            for i in rng.permutation(len(images)) if train else range(len(images)):
                points = vpx[i][ids].astype(np.float64)
                yield crop_pair(images[i], segs[i], points, rng if train else None, cutouts, skins)
                done += 1
                if limit and done >= limit:
                    return
        if not train:
            return


class SegNet(nn.Module):
    """A face crop (N, 3, S, S) in 0..1 -> logits (N, 1, S, S) of "not skin"."""

    def __init__(self, widths: tuple[int, ...] = (16, 24, 48, 64)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1))
        chans = (3, *widths)
        self.down = nn.ModuleList(
            nn.Sequential(conv_bn(a, b, 3, 2), conv_bn(b, b)) for a, b in zip(chans[:-1], chans[1:], strict=True)
        )  # fmt: skip
        self.up = nn.ModuleList(
            conv_bn(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)
        )  # fmt: skip
        self.out = nn.Sequential(conv_bn(widths[0], 8), nn.Conv2d(8, 1, 1))
        self.scale = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, skips = (image - self.mean) / self.std, []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        for conv, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = conv(torch.cat([self.scale(x), skip], 1))
        return self.out(self.scale(x))


def convolutions(net: SegNet) -> list[nn.Sequential]:
    """The conv_bn blocks in the order the forward pass runs them (and ONNX lists their fused convolutions)."""
    return [*(block for stage in net.down for block in stage), *net.up, net.out[0]]


def load_onnx_weights(net: SegNet, path: Path, crops: torch.Tensor) -> None:
    """Start from an exported network (assets/occluder_seg.onnx, whose run folder is gone): the export folded
    each batch norm into its convolution; dense.net.load_folded puts them back, each batch norm reproducing the
    folded layer exactly in eval mode while normalising like a trained one in train mode (its scale and shift the
    spread and mean of the convolution's output over `crops`, a few batches of data)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    convs = [(init[n.input[1]], init[n.input[2]]) for n in proto.graph.node if n.op_type == "Conv"]
    blocks = convolutions(net)
    if len(convs) != len(blocks) + 1:
        raise ValueError(f"{path}: {len(convs)} convolutions, the network has {len(blocks) + 1}")
    with torch.no_grad():  # the last convolution has no batch norm: its bias is its own
        net.out[1].weight.copy_(convs[-1][0]), net.out[1].bias.copy_(convs[-1][1])
    try:
        load_folded(net, [(b[0], b[1]) for b in blocks], convs[:-1], crops)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def batches(it: Iterator[tuple], size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    while True:
        rows = [r for _, r in zip(range(size), it, strict=False)]
        if not rows:
            return
        crops, targets, occ = zip(*rows, strict=True)
        yield torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(targets))[:, None], np.stack(occ)


def evaluate(net: SegNet, files: list[Path], ids: np.ndarray, limit: int) -> dict:
    """Over `limit` exact validation crops: IoU of not-skin, and recall of the occluder class (the share of its
    pixels predicted not-skin; hair and background are not-skin too, so an occluder IoU would be meaningless)."""
    net.eval()
    inter = union = hit = total = 0
    with torch.no_grad():
        for crops, targets, occ in batches(stream(files, ids, 0, False, limit), 64):
            pred = (net(crops) > 0).numpy()[:, 0]
            truth = targets.numpy()[:, 0] > 0.5
            inter, union = inter + int((pred & truth).sum()), union + int((pred | truth).sum())
            hit, total = hit + int((pred & occ).sum()), total + int(occ.sum())
    net.train()
    return {"val_not_skin_iou": inter / max(union, 1), "val_occluder_recall": hit / max(total, 1)}


def check_data(folder: Path) -> None:
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if manifest.get("non_commercial_sources_used", True):
        raise SystemExit(f"{folder}: made with non-commercial sources (or does not say): not for shipped weights")


def train(args: argparse.Namespace) -> None:
    for folder in (args.data, args.val):
        check_data(folder)
    files, val_files = shard_files(args.data), shard_files(args.val)
    ids = ibug_vertex_ids(args.flame)
    torch.manual_seed(args.seed)
    net = SegNet()
    if args.init is not None and Path(args.init).suffix == ".onnx":  # the shipped network (a new schedule)
        crops = next(batches(stream(files, ids, args.seed + 1, True), 128))[0]
        load_onnx_weights(net, Path(args.init), crops)
    elif args.init is not None:  # fine-tune from another run's weights (a new schedule)
        net.load_state_dict(torch.load(Path(args.init) / CHECKPOINT, weights_only=False)["model"])
    cutouts = None
    if args.cutouts is not None:
        with np.load(args.cutouts, allow_pickle=False) as z:
            cutouts = {"rgba": z["rgba"], "eyes": z["eyes"], "hair": z["hair"]}
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(k, args.steps) / args.steps))
    )  # warm-up, then cosine to 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    step = 0
    if (out / CHECKPOINT).is_file():
        ck = torch.load(out / CHECKPOINT, weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    loss_fn = nn.BCEWithLogitsLoss()
    data = batches(stream(files, ids, args.seed + step, True, cutouts=cutouts, hands=args.hands), args.batch)
    t0, running = time.perf_counter(), []
    with open(out / "metrics.jsonl", "a") as log:
        while step < args.steps:
            crops, targets, _ = next(data)
            loss = loss_fn(net(crops), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running.append(loss.item())
            if step % args.every == 0 or step == args.steps:
                row = {"step": step, "loss": float(np.mean(running)), "lr": sched.get_last_lr()[0],
                       "s": round(time.perf_counter() - t0, 1), **evaluate(net, val_files, ids, args.val_images)}  # fmt: skip
                running = []
                log.write(json.dumps(row) + "\n")
                log.flush()
                tmp = out / (CHECKPOINT + ".tmp")
                torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "step": step, "args": vars(args) | {"out": str(args.out)}}, tmp)  # fmt: skip
                tmp.replace(out / CHECKPOINT)
                print(json.dumps(row), flush=True)


def export(run: Path, path: Path) -> dict:
    """The checkpoint as ONNX (input "image" (N, 3, 128, 128), output "not_skin" logits), parity-checked."""
    import onnx
    import onnxruntime as ort

    ck = torch.load(Path(run) / CHECKPOINT, weights_only=False)
    net = SegNet()
    net.load_state_dict(ck["model"])
    net.eval()
    tmp = path.with_name(path.name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(net, (torch.rand(1, 3, SIZE, SIZE),), str(tmp), input_names=["image"],
                          output_names=["not_skin"], opset_version=17, dynamic_axes={"image": {0: "batch"},
                          "not_skin": {0: "batch"}}, dynamo=False)  # fmt: skip
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    args = ck["args"]
    entry.key = SEG_METADATA_KEY
    trained = {k: args[k] for k in ("steps", "batch", "lr", "seed")}
    trained |= {k: Path(args[k]).name for k in ("init", "cutouts") if args.get(k)}  # a fine-tune, real-hair fringes
    trained |= {"hands": True} if args.get("hands") else {}  # ... and real-skin hands
    entry.value = json.dumps({"input_size": SIZE, "steps": int(ck["step"]), "data": str(Path(args["data"]).name),
                              "not_skin_labels": list(NOT_SKIN), "training": trained})  # fmt: skip
    proto.producer_name = "facesmith"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    x = np.random.default_rng(0).random((2, 3, SIZE, SIZE)).astype(np.float32)
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    with torch.no_grad():
        diff = float(np.abs(got - net(torch.from_numpy(x)).numpy()).max())
    if diff >= 1e-4:
        tmp.unlink()
        raise RuntimeError(f"onnxruntime and torch differ by {diff:.2e}; not written")
    tmp.replace(path)
    return {"steps": int(ck["step"]), "parity_max_abs": diff, "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--val", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--every", type=int, default=250)
    t.add_argument("--val-images", type=int, default=500)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--flame", help="the FLAME model the data was rendered with (default: as the pipeline finds it)")
    t.add_argument("--init", type=Path, help="start from this run's weights, or from an exported .onnx")
    t.add_argument("--cutouts", type=Path, help="people cut-outs (.cache/synth/people_cutouts.npz, CC BY): real-hair "
                   "fringes pasted over the forehead of a share of the crops")  # fmt: skip
    t.add_argument(
        "--hands",
        action="store_true",
        help="hands cut from other rendered heads' cheeks pasted over a "
        "share of the crops (the most contrasting tone of a few)",
    )
    e = sub.add_parser("export")
    e.add_argument("run", type=Path)
    e.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.cmd == "train":
        train(args)
    else:
        print(json.dumps(export(args.run, args.output)))


if __name__ == "__main__":
    main()
