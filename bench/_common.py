"""What the benchmarks share: the model and photo folders, and goals with teeth.

Each benchmark states its goals as `Goal`s and ends with `finish`: one human-readable line per goal on
stderr (`GOAL name figure goal (baseline ...): met|MISSED`), then the JSON line last on stdout with a
"goals" list, and exit status 1 when a goal is missed (unless `--no-check`: measure only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import operator
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"

# Where the truth a figure is scored against is not independent of the method, the goal says so.
SELF_CONSISTENCY = "self-consistency: scored against the landmarks it was fitted to, not independent truth"
IN_MODEL = "in-model synthetic: data made with the fit's own model"
OWN_BAKE = "own bake: the albedo truth is a texture baked by this pipeline itself from a real portrait"

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Goal:
    """`figure op target`, e.g. Goal("ms_per_fit", 21.3, "<=", 30.0). `goal` overrides the goal's text
    where the target is derived (e.g. "<= 0.5 x mean face"); `baseline` is the same-run comparison."""

    name: str
    figure: float | None
    op: str
    target: float
    baseline: float | None = None
    baseline_label: str = ""
    kind: str | None = None
    goal: str | None = None

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"{self.name}: unknown comparison {self.op!r}")

    @property
    def met(self) -> bool:
        return self.figure is not None and bool(_OPS[self.op](self.figure, self.target))

    @property
    def goal_text(self) -> str:
        return self.goal or f"{self.op} {_fmt(self.target)}"

    def to_json(self) -> dict:
        out = {"name": self.name, "figure": self.figure, "goal": self.goal_text}
        if self.goal:
            out["target"] = _round(self.target)
        if self.baseline is not None:
            out["baseline"] = self.baseline
            out["baseline_label"] = self.baseline_label
        out["met"] = self.met
        if self.kind:
            out["kind"] = self.kind
        return out

    def line(self) -> str:
        figure = "n/a" if self.figure is None else _fmt(self.figure)
        text = f"GOAL {self.name} {figure} {self.goal_text}"
        if self.goal and self.target != self.baseline:
            text += f" (= {_fmt(self.target)})"
        if self.baseline is not None:
            label = f"{self.baseline_label} " if self.baseline_label else ""
            text += f" (baseline {label}{_fmt(self.baseline)})"
        text += ": met" if self.met else ": MISSED"
        return text + (f" [{self.kind}]" if self.kind else "")


def _round(x: float) -> float:
    return float(f"{x:.4g}")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def add_check_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-check", action="store_true", help="only measure: exit 0 even when a goal is missed")


def finish(result: dict, goals: list[Goal], check: bool = True) -> NoReturn:
    """Print each goal on stderr, the JSON line (with "goals") last on stdout, and exit 1 on a missed goal."""
    for goal in goals:
        print(goal.line(), file=sys.stderr)
    missed = [g.name for g in goals if not g.met]
    summary = f"{len(goals) - len(missed)}/{len(goals)} goals met" + (
        f"; missed: {', '.join(missed)}" if missed else ""
    )
    print(summary + ("" if check or not missed else " (--no-check: exit 0)"), file=sys.stderr)
    sys.stderr.flush()
    print(json.dumps({**result, "goals": [g.to_json() for g in goals]}), flush=True)
    sys.exit(1 if missed and check else 0)


def load_bench_model(flame: str | None):
    """The FLAME model the pipeline would use with `--flame` (or $FACESMITH_FLAME, or the development model)."""
    from facesmith.inference.pipeline import load_pipeline_model

    return load_pipeline_model(pipeline_options(flame))


def pipeline_options(flame: str | None, **changes):
    """DEFAULTS with `--flame` and any other changes."""
    from facesmith.inference.options import DEFAULTS

    return dataclasses.replace(DEFAULTS, flame_path=flame or "", **changes)
