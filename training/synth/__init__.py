"""Synthetic data engine: FLAME heads rendered with exact labels (projected vertices, visibility, β, ψ,
pose, camera), composited onto photos, deterministic by seed. See engine.py; `facesmith synth` runs it."""
