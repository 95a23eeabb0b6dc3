#!/usr/bin/env bash
# One prepared GPU training burst: data (if missing), training (resumes), export, benchmark; everything the
# session needs back lands in $OUT (default out/gpu). Run from the repository root on the GPU machine:
#   tools/train_gpu.sh [CONFIG] [RUN_DIR]
# Uses every GPU through torchrun (DDP, nccl). Needs a CUDA build of torch and ./setup.sh --gpu's onnxruntime.
set -euo pipefail
CONFIG="${1:-training/configs/dense_gpu.toml}"
RUN="${2:-.cache/dense/run_gpu}"
OUT="${OUT:-out/gpu}"
PY=.venv/bin/python
FS=.venv/bin/facesmith
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpus.txt"
GPUS=$(nvidia-smi -L | wc -l)
[ -f .cache/dense/train/manifest.json ] || "$FS" synth --n 30000 --seed 1 --out .cache/dense/train --workers "$(nproc)"
[ -f .cache/dense/val/manifest.json ] || "$FS" synth --n 1000 --seed 2 --out .cache/dense/val --workers "$(nproc)"
start=$(date +%s)
.venv/bin/torchrun --standalone --nproc_per_node "$GPUS" "$FS" train --config "$CONFIG" --out "$RUN" 2>&1 | tail -n 40 | tee "$OUT/train_tail.txt"
echo "train_s $(( $(date +%s) - start ))" | tee -a "$OUT/train_tail.txt"
"$FS" export-onnx "$RUN" -o "$OUT/dense_landmarks.onnx"
cp "$RUN/metrics.jsonl" "$RUN/loss.png" "$RUN/spec.json" "$OUT/"
cp "$RUN/checkpoint.pt" "$OUT/" 2>/dev/null || true
(cd bench && ../"$PY" dense.py --model "../$OUT/dense_landmarks.onnx" --no-check > "../$OUT/bench_dense.json" 2> "../$OUT/bench_dense.txt") || true
ls -la "$OUT"
