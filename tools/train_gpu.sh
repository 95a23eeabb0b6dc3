#!/usr/bin/env bash
# One prepared GPU training burst for the dense-landmark network, made for the lent device machine (its
# python3 holds torch, numpy, OpenCV, onnx and onnxruntime; no .venv, no ../shared, no network):
#   data (facesmith synth on every core) -> torchrun on every GPU (DDP, nccl) -> export-onnx -> bench numbers.
# Everything to bring back lands in $OUT (default out/gpu): the .onnx (< 16 MB), metrics.jsonl, loss.png,
# spec.json and the logs; the checkpoint (~32 MB with the optimizer) stays there.
#
# From this machine (device tool), with the development model and the albedo bank carried (21 MB):
#   run(command="tools/train_gpu.sh", carry=[".cache/models", ".cache/synth"], timeout_s=600)
# SMOKE=1 makes it a 1-minute dry run (200 + 64 images, 20 steps) that also works on a CPU-only machine; its data
# go to $OUT/smoke_data, so a dry run never touches .cache/dense (where a CPU campaign may be writing).
# CONFIG=training/configs/dense_cpu_v2.toml RUN=.cache/dense/run_v2 continues the CPU campaign's run there.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-training/configs/dense_gpu.toml}"
RUN="${RUN:-.cache/dense/run_gpu}"
OUT="${OUT:-out/gpu}"
N_TRAIN="${N_TRAIN:-50000}"
N_VAL="${N_VAL:-1000}"
DATA="${DATA:-.cache/dense}"
PY="${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
mkdir -p "$OUT"
# The repository root is the package `facesmith`: without an install, import it through a link.
if ! "$PY" -c "import facesmith.cli" 2>/dev/null; then
    mkdir -p /tmp/fs-pkg && ln -sfn "$PWD" /tmp/fs-pkg/facesmith
    export PYTHONPATH="/tmp/fs-pkg${PYTHONPATH:+:$PYTHONPATH}"
fi
FS=("$PY" -m facesmith.cli.main)
GPUS=$(nvidia-smi -L 2>/dev/null | tee "$OUT/gpus.txt" | wc -l || true)
NPROC=$(( GPUS > 0 ? GPUS : 1 ))
STEPS_ARGS=()
if [ "${SMOKE:-0}" = 1 ]; then
    N_TRAIN=200
    N_VAL=64
    DATA="$OUT/smoke_data"
    RUN="$OUT/smoke_run"
    rm -rf "$RUN"
    sed -e 's/^steps = .*/steps = 20/' -e 's/^val_every = .*/val_every = 10/' -e 's/^workers = .*/workers = 1/' \
        -e 's/^batch = .*/batch = 8/' -e 's/^val_images = .*/val_images = 32/' \
        -e "s|^train = .*|train = \"$DATA/train\"|" -e "s|^val = .*|val = \"$DATA/val\"|" "$CONFIG" > "$OUT/smoke.toml"
    CONFIG="$OUT/smoke.toml"
fi
start=$(date +%s)
[ -f "$DATA/train/manifest.json" ] || "${FS[@]}" synth --n "$N_TRAIN" --seed 1 --out "$DATA/train" --workers "$(nproc)" > "$OUT/synth.log" 2>&1
[ -f "$DATA/val/manifest.json" ] || "${FS[@]}" synth --n "$N_VAL" --seed 2 --out "$DATA/val" --workers "$(nproc)" >> "$OUT/synth.log" 2>&1
echo "data_s $(( $(date +%s) - start ))" | tee "$OUT/times.txt"
start=$(date +%s)
"$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" -m facesmith.cli.main train \
    --config "$CONFIG" --out "$RUN" > "$OUT/train.log" 2>&1 || { tail -n 30 "$OUT/train.log"; exit 1; }
echo "train_s $(( $(date +%s) - start ))" | tee -a "$OUT/times.txt"
"${FS[@]}" export-onnx "$RUN" -o "$OUT/dense_landmarks.onnx" | tee -a "$OUT/times.txt"
cp "$RUN/metrics.jsonl" "$RUN/loss.png" "$RUN/spec.json" "$OUT/"
grep val_ "$OUT/metrics.jsonl" | tail -n 3
