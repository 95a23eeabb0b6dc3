#!/usr/bin/env bash
# One-command setup: .venv with Python 3.11, pinned dependencies, Facesmith (editable),
# and the development FLAME model when ../shared/flame is present.
# Idempotent: a second run only re-checks a stamp and the development model.
set -euo pipefail
cd "$(dirname "$0")"

PY="${FACESMITH_PYTHON:-python3.11}"
VENV=.venv
CONSTRAINTS=requirements/constraints.txt
STAMP="$VENV/.facesmith-setup"

want=$(cat "$CONSTRAINTS" requirements/runtime.txt requirements/dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
    "${pip[@]}" install -c "$CONSTRAINTS" torch==2.13.0
    "${pip[@]}" install -c "$CONSTRAINTS" -r requirements/runtime.txt -r requirements/dev.txt
    "${pip[@]}" install --no-deps --no-build-isolation -e .
    echo "$want" > "$STAMP"
fi

DEV_PARTS="${FACESMITH_DEV_PARTS:-../shared/flame}"
DEV_MODEL=.cache/models/dev_flame.npz
if [ -d "$DEV_PARTS" ] && [ ! -f "$DEV_MODEL" ]; then
    "$VENV/bin/facesmith" model build-dev --parts "$DEV_PARTS" -o "$DEV_MODEL"
fi
echo "setup done: $VENV ($("$VENV/bin/python" --version))"
