#!/usr/bin/env bash
# One-command setup: .venv with Python 3.11, pinned dependencies, Facesmith (editable),
# and the development FLAME model when ../shared/flame is present.
# Idempotent: a second run only re-checks a stamp and the development model.
# --gpu: also swap onnxruntime for onnxruntime-gpu (requirements/gpu.txt), so the dense-landmark network
# can run on CUDA (--device cuda|auto); it needs an NVIDIA driver with the CUDA 12 and cuDNN 9 runtimes.
set -euo pipefail
GPU=0
for arg in "$@"; do
    case "$arg" in
        --gpu) GPU=1 ;;
        *) echo "setup.sh: unknown option $arg (only --gpu)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")"

PY="${FACESMITH_PYTHON:-python3.11}"
VENV=.venv
CONSTRAINTS=requirements/constraints.txt
STAMP="$VENV/.facesmith-setup"

# Runtime, the Blender module (headless exports), training and test tools; pyproject.toml reads the same files.
LISTS=(requirements/runtime.txt requirements/blender.txt requirements/training.txt requirements/dev.txt)
want=$(cat "$CONSTRAINTS" "${LISTS[@]}" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
    "${pip[@]}" install -c "$CONSTRAINTS" torch==2.13.0
    # A reinstall goes back to the CPU onnxruntime (the two builds share one module); --gpu swaps again.
    "${pip[@]}" uninstall -y onnxruntime-gpu >/dev/null 2>&1 || true
    reqs=(); for list in "${LISTS[@]}"; do reqs+=(-r "$list"); done
    "${pip[@]}" install -c "$CONSTRAINTS" "${reqs[@]}"
    "${pip[@]}" install --no-deps --no-build-isolation -e .
    echo "$want" > "$STAMP"
fi

if [ "$GPU" = 1 ]; then
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # onnxruntime and onnxruntime-gpu install the same module: only one may be there.
    "${pip[@]}" uninstall -y onnxruntime
    "${pip[@]}" install -c "$CONSTRAINTS" -r requirements/gpu.txt
    "$VENV/bin/python" -c "import onnxruntime as o; p = o.get_available_providers(); print('onnxruntime providers:', ', '.join(p)); 'CUDAExecutionProvider' in p or print('setup.sh: warning: no CUDA provider; check the NVIDIA driver and CUDA 12 / cuDNN 9 runtimes')"
fi

DEV_PARTS="${FACESMITH_DEV_PARTS:-../shared/flame}"
DEV_MODEL=.cache/models/dev_flame.npz
if [ -d "$DEV_PARTS" ] && [ ! -f "$DEV_MODEL" ]; then
    "$VENV/bin/facesmith" model build-dev --parts "$DEV_PARTS" -o "$DEV_MODEL"
fi
echo "setup done: $VENV ($("$VENV/bin/python" --version))"
