"""Milliseconds per FLAME forward call: numpy vs torch (CPU), batch 1 and 64.

Baseline measured in the same run: batch 64 as 64 separate numpy calls.
Usage: python bench/flame_forward.py [--flame PATH] [--repeat N] [--threads N]
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

from facesmith.inference import flame
from facesmith.inference.flame.paths import default_dev_model_path, load_model, resolve_flame_path


def time_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (allocations, torch kernels)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flame")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    model = load_model(resolve_flame_path(args.flame, os.environ, dev_model=default_dev_model_path()))

    rng = np.random.default_rng(0)

    def params(b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            rng.normal(size=(b, model.n_shape)),
            rng.normal(size=(b, model.n_expr)),
            rng.normal(scale=0.2, size=(b, 5, 3)),
        )

    p1, p64 = params(1), params(64)
    results = {
        "numpy_b1_ms": time_ms(lambda: flame.flame_forward(model, *p1), args.repeat),
        "numpy_b64_ms": time_ms(lambda: flame.flame_forward(model, *p64), max(3, args.repeat // 4)),
        "baseline_numpy_b64_as_64_calls_ms": time_ms(
            lambda: [flame.flame_forward(model, *(x[i] for x in p64)) for i in range(64)], max(3, args.repeat // 4)
        ),
    }
    try:
        import torch

        from facesmith.training.flame_torch import FlameLayer

        torch.set_num_threads(args.threads)
        layer = FlameLayer(model)
        t1, t64 = ([torch.tensor(x, dtype=torch.float32) for x in p] for p in (p1, p64))
        with torch.no_grad():
            results["torch_b1_ms"] = time_ms(lambda: layer(*t1), args.repeat)
            results["torch_b64_ms"] = time_ms(lambda: layer(*t64), max(3, args.repeat // 4))
    except ImportError:
        results["torch"] = "not installed"

    results.update(vertices=model.n_vertices, shape=model.n_shape, expression=model.n_expr, threads=args.threads)
    for key, value in results.items():
        print(f"{key:36s} {value:.2f}" if isinstance(value, float) else f"{key:36s} {value}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
