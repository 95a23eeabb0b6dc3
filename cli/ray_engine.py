"""`facesmith batch --engine ray`: heads as tasks on long-lived Ray actors.

Each actor keeps bpy, the FLAME model, the landmark detector and the UV raster loaded, and makes heads
with the same `run_job` as the local batch (lock, staging, commit), so a head is complete or absent
whatever happens to a worker. A worker that dies is restarted and its head retried by Ray
(`max_restarts`, `max_task_retries`); the retry finds the dead worker's staging folder stale and removes
it. Outcomes come back to this driver, which prints the progress and writes the one report.

Ray is an optional extra (`pip install facesmith[ray]`, requirements/ray.txt); the add-on never imports
this module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..inference.errors import FacesmithError
from ..inference.options import PipelineOptions
from ..inference.pipeline import Reconstructor, load_pipeline_model
from .console import Console
from .heads import Job, Outcome, WriteOptions, report_outcome, run_job

RETRIES = 3  # restarts of a dead worker, and retries of the head it was making
POLL_S = 0.5  # how often the driver looks at Ctrl-C while waiting


class HeadWorker:
    """One Ray actor: a Reconstructor for many heads (made a Ray actor class by `start_workers`)."""

    def __init__(self, options: PipelineOptions, folder: str, write: WriteOptions) -> None:
        self.reconstructor = Reconstructor(options, load_pipeline_model(options))
        self.folder, self.write = Path(folder), write
        self.cancel = threading.Event()  # the driver stops handing out work instead

    def make(self, job: Job) -> dict:
        return asdict(run_job(self.reconstructor, job, self.folder, self.write, self.cancel, lambda text: None))


LOCAL_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's switch to keep every address on loopback
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _ray(address: str | None):
    # Ray swaps a loopback address for the machine's network address; for a local Ray, or a cluster on
    # loopback, this (oddly named) switch keeps it on loopback. It is read when Ray is imported.
    if address is None or address.rpartition(":")[0].strip("[]") in LOOPBACK:
        os.environ.update(LOCAL_ONLY)
    try:
        import ray
    except ImportError:
        raise FacesmithError("--engine ray needs Ray: pip install 'facesmith[ray]' (requirements/ray.txt)") from None
    return ray


def start_workers(ray, count: int, options: PipelineOptions, folder: Path, write: WriteOptions) -> list:
    actor = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(HeadWorker)
    return [actor.remote(options, str(folder), write) for _ in range(count)]


def run_jobs_on_ray(
    jobs: Sequence[Job], folder: Path, options: PipelineOptions, write: WriteOptions, cancel: threading.Event,
    console: Console, address: str | None, workers: int, quiet_warnings: Sequence[str] = (),
) -> tuple[list[Outcome], bool]:  # fmt: skip
    """The batch on a Ray cluster (`address`, or a local one started and stopped here) with `workers` actors.
    Returns the outcomes (in the order they finished) and whether the run was stopped."""
    ray = _ray(address)
    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
             **({} if address else {"num_cpus": workers}))  # fmt: skip
    try:
        pool = start_workers(ray, workers, options, folder, write)
        waiting, running, outcomes = list(reversed(jobs)), {}, []
        while waiting or running:
            if cancel.is_set():
                return outcomes, True
            for actor in pool:  # one head per worker at a time: the next goes to whichever is free
                if waiting and all(busy is not actor for busy, _ in running.values()):
                    job = waiting.pop()
                    running[actor.make.remote(job)] = (actor, job)
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in done:
                _, job = running.pop(ref)
                outcome = _outcome(ray, ref, job)
                outcomes.append(outcome)
                report_outcome(console, len(outcomes) - 1, len(jobs), outcome, quiet_warnings)
        return outcomes, False
    finally:
        ray.shutdown()


def _outcome(ray, ref, job: Job) -> Outcome:
    try:
        row = ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker died more often than it may be restarted
        return Outcome(job.name, "failed", f"worker lost ({type(exc).__name__})")
    return Outcome(**{**row, "outputs": tuple(row["outputs"]), "warnings": tuple(row["warnings"])})
