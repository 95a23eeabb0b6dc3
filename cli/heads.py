"""`reconstruct` and `batch`: heads through the pipeline, written by the Blender side, committed as sets.

Exit codes (the same for both commands, and in README):
0 every head was written or was already complete; 1 a head failed (a batch carries on past it) or the
command could not start; 2 bad arguments; 130 / 143 stopped by SIGINT / SIGTERM (what finished is kept,
and a batch's report lists it).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..inference.errors import FacesmithError
from ..inference.files import atomic_write
from ..inference.images import PHOTO_SUFFIXES
from ..inference.pipeline import CancelledError, Reconstructor, check_cancel
from ..inference.texture.maps import write_texture_maps
from .console import Console
from .outputs import HeadFiles, check_name, commit, head_lock, remove_staging, staging

EXIT_OK, EXIT_FAILED = 0, 1  # 2 is argparse's, 128 + N a signal's (interrupt.exit_code)
REPORT_NAME = "batch_report.json"


@dataclass(frozen=True)
class Job:
    name: str
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "ok", "skipped" or "failed"
    message: str = ""
    outputs: tuple[str, ...] = ()
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class WriteOptions:
    formats: tuple[str, ...]
    preview: bool
    overwrite: bool


def make_head(
    reconstructor: Reconstructor, job: Job, files: HeadFiles, options: WriteOptions, cancel: threading.Event
) -> Outcome:
    """One head: skipped when its set is complete (unless overwrite), else fitted, written and committed."""
    start = time.perf_counter()
    files.check()
    if files.complete() and not options.overwrite:
        return Outcome(job.name, "skipped", f"exists: {files.report.name} and its files (use --overwrite)")
    files.folder.mkdir(parents=True, exist_ok=True)
    with head_lock(files.folder, job.name):
        remove_staging(files.folder, job.name)  # left by a run of this head that was killed
        head = reconstructor.run(job.photos, job.name, cancel=cancel)
        from ..addon.output import write_head  # bpy: only commands that write heads need it

        with staging(files.folder, job.name) as folder:
            written = write_head(head, folder, options.formats, options.preview, cancel)
            maps = write_texture_maps(head.textures, folder, job.name)
            report = head.to_json()
            report["texture_maps"] = {
                **{m: p.name for m, p in maps.items()}, "displacement_range_m": head.textures.displacement_range,
                "normal_convention": "tangent space, OpenGL (+Y along +v); flip green for DirectX-style engines",
            }  # fmt: skip
            report["timings_ms"].update({k: round(v, 2) for k, v in written.timings_ms.items()})
            report["rig"]["corrective_drivers"] = written.drivers
            report["outputs"] = [p.name for p in files.paths]
            atomic_write(folder / files.report.name, lambda f: f.write(json.dumps(report, indent=1).encode()))
            check_cancel(cancel)
            outputs = commit(folder, files)
    photo = head.fit.photos[0]
    return Outcome(
        job.name, "ok", f"landmark RMS {photo.landmark_rms_px:.2f} px ({photo.backend})",
        tuple(str(p) for p in outputs), time.perf_counter() - start, head.warnings,
    )  # fmt: skip


def batch_jobs(folder: Path) -> tuple[list[Job], list[str]]:
    """One job per photo in `folder`, named by the file's stem; stems that clash (a.jpg, a.png) get the
    extension appended (a_jpg, a_png) rather than overwrite each other. Returns the jobs and notes."""
    if not folder.is_dir():
        raise FacesmithError(f"{folder}: not a folder")
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise FacesmithError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    stems: dict[str, int] = {}
    for p in photos:
        stems[p.stem.casefold()] = stems.get(p.stem.casefold(), 0) + 1
    jobs, notes = [], []
    for p in photos:
        name = p.stem if stems[p.stem.casefold()] == 1 else f"{p.stem}_{p.suffix[1:].lower()}"
        if name != p.stem:
            notes.append(f"{p.name}: written as {name} (another photo has the same name)")
        jobs.append(Job(name, (p,)))
    return jobs, notes


def progress_line(i: int, n: int, outcome: Outcome) -> str:
    bar = "#" * round(20 * (i + 1) / n)
    return f"[{bar:<20}] {i + 1}/{n} {outcome.name}: {outcome.status} {outcome.message} ({outcome.seconds:.1f} s)"


def run_jobs(
    reconstructor: Reconstructor, jobs: Sequence[Job], folder: Path, options: WriteOptions, cancel: threading.Event,
    console: Console, quiet_warnings: Sequence[str] = (),
) -> tuple[list[Outcome], bool]:  # fmt: skip
    """Each job in turn; one that fails is recorded and the rest go on. Stops when `cancel` is set.
    Returns the outcomes and whether the run was stopped. `quiet_warnings` were printed already."""
    outcomes: list[Outcome] = []
    for i, job in enumerate(jobs):
        start = time.perf_counter()
        try:
            check_cancel(cancel)
            check_name(job.name)
            files = HeadFiles(folder, job.name, options.formats, options.preview)
            outcome = make_head(reconstructor, job, files, options, cancel)
        except CancelledError:
            return outcomes, True
        except FacesmithError as exc:
            outcome = Outcome(job.name, "failed", str(exc), seconds=time.perf_counter() - start)
        except Exception as exc:  # a bug: reported with its traceback, and the batch goes on
            console.note(traceback.format_exc().rstrip())
            message = f"internal error ({type(exc).__name__}: {exc})"
            outcome = Outcome(job.name, "failed", message, seconds=time.perf_counter() - start)
        outcomes.append(outcome)
        for warning in outcome.warnings:
            if warning not in quiet_warnings:
                console.warn(f"{job.name}: {warning}")
        if len(jobs) > 1:
            console.note(progress_line(i, len(jobs), outcome))
    return outcomes, False


def write_report(folder: Path, source: Path, jobs: Sequence[Job], outcomes: Sequence[Outcome], stopped: bool) -> Path:
    """OUT/batch_report.json: every photo's outcome, those not reached when the run was stopped too."""
    done = {o.name for o in outcomes}
    rows = [asdict(o) for o in outcomes] + [
        {"name": j.name, "status": "not run", "message": "the run was stopped first"}
        for j in jobs
        if j.name not in done
    ]
    report = {
        "input": str(source),
        "photos": len(jobs),
        "stopped": stopped,
        "ok": sum(o.status == "ok" for o in outcomes),
        "skipped": sum(o.status == "skipped" for o in outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
        "results": rows,
    }
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / REPORT_NAME, lambda f: f.write(json.dumps(report, indent=1).encode()))
