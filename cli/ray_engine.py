"""`facesmith batch --engine ray`: heads as tasks on long-lived Ray actors.

Each actor keeps bpy, the FLAME model, the landmark detector and the UV raster loaded, and makes heads
with the same `run_job` as the local batch (lock, staging, commit), so a head is complete or absent
whatever happens to a worker. A worker that dies is restarted and its head retried by Ray
(`max_restarts`, `max_task_retries`); the retry finds the dead worker's staging folder stale and removes
it. Outcomes come back to this driver, which prints the progress and writes the one report.

A stop (Ctrl-C, SIGTERM) cancels the running heads (Ray's cancel flag, which the worker reads as its
`cancel`), so each worker leaves its head the way a local run does: lock and staging folder removed. Each
worker keeps its temporary files (bpy's `blender_*` session folder) in a folder of its own, removed when it
is closed, or by the next worker on that machine when it was killed.

Ray is an optional extra (`pip install facesmith[ray]`, requirements/ray.txt); the add-on never imports
this module.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from filelock import lock_descriptor

from ..inference.errors import FacesmithError
from ..inference.options import PipelineOptions
from ..inference.pipeline import Reconstructor, load_pipeline_model
from .console import Console
from .heads import Job, Outcome, WriteOptions, report_outcome, run_job
from .outputs import remove_stale

RETRIES = 3  # restarts of a dead worker, and retries of the head it was making
POLL_S = 0.5  # how often the driver looks at Ctrl-C while waiting
# A cancelled head stops at the pipeline's next check (each step a few seconds at most); a worker that takes longer
# is shut down with its head unfinished, and its lock and staging folder are removed once it is gone.
STOP_WAIT_S = 60.0
WORKER_TEMP_PREFIX = "facesmith-ray-worker-"
TEMP_LOCK = "worker.lock"  # held by the worker that owns the folder for as long as it lives
TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")  # where bpy (and Python's tempfile) put temporaries: POSIX, Windows


class RayCancel(threading.Event):
    """A worker's `cancel` for one head: set when the driver cancels the Ray task running it. Ray only raises a flag
    for a running actor task (no exception), read here wherever the pipeline checks `cancel`."""

    def is_set(self) -> bool:
        if not super().is_set() and _task_cancelled():
            self.set()
        return super().is_set()


def _task_cancelled() -> bool:
    import ray

    try:
        return ray.get_runtime_context().is_canceled()
    except RuntimeError:  # not inside a Ray task (another thread, the driver): nothing to cancel
        return False


def claim_temp_dir(parent: Path) -> tuple[Path, int]:
    """A new temporary folder in `parent` for this process, and the descriptor of the lock on it that the process
    holds while it lives. Folders in `parent` of processes that died first are removed (sweep_temp_dirs)."""
    sweep_temp_dirs(parent)
    path = Path(tempfile.mkdtemp(prefix=WORKER_TEMP_PREFIX, dir=parent))
    fd = os.open(path / TEMP_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    lock_descriptor(fd, blocking=False)  # a new file: always free (filelock's flock / LockFileEx on the descriptor)
    return path, fd


def sweep_temp_dirs(parent: Path) -> list[Path]:
    """Remove the workers' temporary folders in `parent` whose lock is free: their worker died without closing.
    Folders without the lock file (another user's, or one being made this instant) are left alone."""
    removed = []
    for path in sorted(parent.glob(f"{WORKER_TEMP_PREFIX}*")):
        try:
            fd = os.open(path / TEMP_LOCK, os.O_RDWR)
        except OSError:
            continue
        try:
            free = lock_descriptor(fd, blocking=False)
        finally:
            os.close(fd)  # before the folder goes: Windows removes no file that is open
        if free:  # its worker is gone, and no other process takes a folder over: it can go unlocked
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class HeadWorker:
    """One Ray actor: a Reconstructor for many heads (made a Ray actor class by `start_workers`)."""

    def __init__(self, options: PipelineOptions, folder: str, write: WriteOptions) -> None:
        # Before bpy is imported (by the first head): bpy makes its session folder in TMPDIR at import and removes it
        # only at a normal exit, which a Ray worker never has (it is killed at shutdown).
        self.temp, self._temp_lock = claim_temp_dir(Path(tempfile.gettempdir()))
        os.environ.update(dict.fromkeys(TEMP_VARIABLES, str(self.temp)))
        tempfile.tempdir = None  # Python's tempfile reads the variables again
        self.reconstructor = Reconstructor(options, load_pipeline_model(options))
        self.folder, self.write = Path(folder), write

    def make(self, job: Job) -> dict:
        cancel = RayCancel()
        return asdict(run_job(self.reconstructor, job, self.folder, self.write, cancel, lambda text: None))

    def close(self) -> None:
        """Remove this worker's temporary folder; the driver calls it last (after any running head has ended)."""
        os.close(self._temp_lock)  # first: Windows removes no file that is open
        shutil.rmtree(self.temp, ignore_errors=True)


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
    pool: list = []
    try:
        pool = start_workers(ray, workers, options, folder, write)
        waiting, running, outcomes = list(reversed(jobs)), {}, []
        while waiting or running:
            if cancel.is_set():
                for ref in running:
                    ray.cancel(ref)
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
        try:
            close_workers(ray, pool)
        finally:  # also when a second Ctrl-C cut the wait short
            ray.shutdown()
            # Workers killed outright (that second Ctrl-C, a crash) on this machine: their locks, staging, temporaries.
            remove_stale(folder)
            sweep_temp_dirs(Path(tempfile.gettempdir()))


def close_workers(ray, pool: Sequence) -> None:
    """Each worker's `close`, queued after the head it is making (an actor runs its calls in turn), so this waits
    for cancelled heads to clean up; a worker that does not answer in STOP_WAIT_S is left to the shutdown."""
    if not pool:
        return
    refs = [actor.close.remote() for actor in pool]
    ray.wait(refs, num_returns=len(refs), timeout=STOP_WAIT_S)


def _outcome(ray, ref, job: Job) -> Outcome:
    try:
        row = ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker died more often than it may be restarted
        return Outcome(job.name, "failed", f"worker lost ({type(exc).__name__})")
    return Outcome(**{**row, "outputs": tuple(row["outputs"]), "warnings": tuple(row["warnings"])})
