"""Milliseconds per FLAME forward call: numpy vs torch (CPU), batch 1 and 64.

Baseline measured in the same run: batch 64 as 64 separate numpy calls.
Goals: numpy batch 1 ≤ 5 ms (a head takes a few forward calls — assembling the fit, the rig's basis, the
face region — inside the pipeline's 3 s per photo; the fit itself never calls it); numpy batch 64 faster
than the 64 separate calls (what batching is for: synthetic data and training).
Usage: python bench/flame_forward.py [--flame PATH] [--repeat N] [--threads N] [--no-check]
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from _common import Goal, add_check_argument, finish, load_bench_model

from facesmith.inference import flame

NUMPY_B1_GOAL_MS = 5.0


def time_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (allocations, torch kernels)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flame")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    add_check_argument(parser)
    args = parser.parse_args()
    model = load_bench_model(args.flame)

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
    results = {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}
    baseline = results["baseline_numpy_b64_as_64_calls_ms"]
    goals = [
        Goal("numpy_b1_ms", results["numpy_b1_ms"], "<=", NUMPY_B1_GOAL_MS),
        Goal("numpy_b64_ms", results["numpy_b64_ms"], "<", baseline, baseline, "64 separate numpy calls",
             goal="< baseline"),
    ]  # fmt: skip
    finish(results, goals, not args.no_check)


if __name__ == "__main__":
    main()
