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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..inference.errors import FacesmithError
from ..inference.files import atomic_write, open_reason, write_error
from ..inference.fit import Pin
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
    pins: tuple[Pin, ...] = ()  # the artist's corrections (`reconstruct --pins`); Pin.photo indexes `photos`


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
        head = reconstructor.run(job.photos, job.name, cancel=cancel, pins=job.pins)
        from ..addon.output import write_head  # bpy: only commands that write heads need it

        with staging(files.folder, job.name) as folder:
            written = write_head(head, folder, options.formats, options.preview, cancel)
            maps = write_texture_maps(head.textures, folder, job.name)
            report = head.to_json()
            report["texture_maps"] = {
                **{m: p.name for m, p in maps.items()}, "displacement_range_m": head.textures.displacement_range,
                "normal_convention": "tangent space, OpenGL (+Y along +v); flip green for DirectX-style engines",
                "eyes_layout": "eyeball, Lambert azimuthal equal-area about the pupil (the centre); back pole on the "
                               "inscribed circle; +u the eye's +x, +v up",
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


def batch_jobs(folder: Path, output: Path | None = None) -> tuple[list[Job], list[str]]:
    """The heads of a batch folder, sorted by name: each photo directly in it is one head named by its stem;
    each sub-folder holding photos is one head from all of them (several photos of one person), named by
    the folder. Names that clash (a.jpg and a.png, or a photo and a folder) get their extension appended
    (a_jpg, a_png) rather than overwrite each other. Hidden files and Facesmith's own outputs in `output`
    (the batch's output folder, which may be the input folder or inside it) are never photos, so a rerun
    does not make heads of the last run's texture maps and previews. Returns the jobs and notes about
    renamed ones."""
    if not folder.is_dir():
        raise FacesmithError(f"{folder}: not a folder")
    outputs = own_outputs(folder, output) if output is not None else frozenset()
    heads: list[tuple[str, str, tuple[Path, ...]]] = []  # (name, suffix used on a clash, photos)
    notes = []
    for entry in sorted(folder.iterdir()):
        if is_photo(entry, outputs):
            heads.append((entry.stem, entry.suffix[1:].lower(), (entry,)))
        elif entry.is_dir() and not entry.name.startswith("."):
            photos = photos_in(entry, outputs)
            if photos:
                heads.append((entry.name, "person", photos))
        elif leads_nowhere(entry) and not entry.name.startswith("."):  # a link to a person's folder, perhaps
            notes.append(f"{entry}: skipped, {link_problem(entry)}")
    if not heads:
        raise FacesmithError(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)}) and no folders of photos")
    counts: dict[str, int] = {}
    for name, _, _ in heads:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    jobs = []
    for name, suffix, photos in heads:
        unique = name if counts[name.casefold()] == 1 else f"{name}_{suffix}"
        if unique != name:
            notes.append(
                f"{photos[0].name if suffix != 'person' else name + '/'}: written as {unique} (another head has the same name)"
            )
        jobs.append(Job(unique, photos))
    return sorted(jobs, key=lambda j: j.name), notes


def is_photo(path: Path, outputs: frozenset[Path] = frozenset()) -> bool:
    """A visible photo file that is not one of Facesmith's outputs (`outputs`: resolved paths). A link named like a
    photo that leads nowhere counts: its head fails with the reason in the report instead of vanishing."""
    if path.name.startswith(".") or path.suffix.lower() not in PHOTO_SUFFIXES:  # hidden: staging and temp files
        return False
    if leads_nowhere(path):  # resolve() would raise on a loop; no output of ours is such a link
        return True
    return path.is_file() and path.resolve() not in outputs


def leads_nowhere(path: Path) -> bool:
    """A symbolic link whose target is missing, or that leads back to itself (a loop)."""
    return path.is_symlink() and not path.exists()


def link_problem(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        return open_reason(exc, path)
    return "not a file"


def photos_in(folder: Path, outputs: frozenset[Path] = frozenset()) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if is_photo(p, outputs)))


def own_outputs(source: Path, output: Path) -> frozenset[Path]:
    """Every file (resolved) a head could have in `output`: the heads a batch of `source` would make (by name,
    so an interrupted commit's maps count too), and the heads recorded there by their NAME.json."""
    if not output.is_dir():
        return frozenset()
    names = {p.stem for p in source.iterdir() if not p.name.startswith(".")}
    names |= {p.stem for p in output.glob("*.json") if p.is_file()}
    owned: set[Path] = set()
    for name in names:
        try:
            check_name(name)
        except FacesmithError:
            continue
        owned.update(p.resolve() for p in HeadFiles(output, name).known())
    return frozenset(owned)


def parse_shard(text: str) -> tuple[int, int]:
    """ "I/N" -> (I, N), 1 <= I <= N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise FacesmithError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not 1 <= index <= count:
        raise FacesmithError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def shard_jobs(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Shard I of N: every N-th head of the sorted list, from the I-th. Deterministic, so any scheduler
    (a Slurm array, a Flamenco job) can run the shards anywhere and in any order."""
    return list(jobs[index - 1 :: count])


def progress_line(i: int, n: int, outcome: Outcome) -> str:
    bar = "#" * round(20 * (i + 1) / n)
    return f"[{bar:<20}] {i + 1}/{n} {outcome.name}: {outcome.status} {outcome.message} ({outcome.seconds:.1f} s)"


def run_job(
    reconstructor: Reconstructor, job: Job, folder: Path, options: WriteOptions, cancel: threading.Event,
    on_bug: Callable[[str], None],
) -> Outcome:  # fmt: skip
    """One head as a batch runs it: a failure becomes a "failed" outcome (a bug too, its traceback passed to
    `on_bug`), so the batch goes on. CancelledError passes through, and so does whatever a stop caused."""
    start = time.perf_counter()
    try:
        check_cancel(cancel)
        check_name(job.name)
        files = HeadFiles(folder, job.name, options.formats, options.preview)
        return make_head(reconstructor, job, files, options, cancel)
    except CancelledError:
        raise
    except FacesmithError as exc:
        return Outcome(job.name, "failed", str(exc), seconds=time.perf_counter() - start)
    except OSError as exc:  # the file system (a full disk, permissions): the file and the reason, no traceback
        return Outcome(job.name, "failed", str(write_error(exc)), seconds=time.perf_counter() - start)
    except Exception as exc:
        if cancel.is_set():
            # A second Ctrl-C raises inside whatever Python runs; inside a Blender operator (the glTF exporter)
            # it comes out as that operator's RuntimeError. The run was being stopped: stop, not a failed head.
            raise CancelledError(f"{job.name}: stopped") from exc
        on_bug(traceback.format_exc().rstrip())
        message = f"internal error ({type(exc).__name__}: {exc})"
        return Outcome(job.name, "failed", message, seconds=time.perf_counter() - start)


def report_outcome(console: Console, i: int, n: int, outcome: Outcome, quiet_warnings: Sequence[str]) -> None:
    for warning in outcome.warnings:
        if warning not in quiet_warnings:
            console.warn(f"{outcome.name}: {warning}")
    if n > 1:
        console.note(progress_line(i, n, outcome))


def run_jobs(
    reconstructor: Reconstructor, jobs: Sequence[Job], folder: Path, options: WriteOptions, cancel: threading.Event,
    console: Console, quiet_warnings: Sequence[str] = (),
) -> tuple[list[Outcome], bool]:  # fmt: skip
    """Each job in turn; one that fails is recorded and the rest go on. Stops when `cancel` is set.
    Returns the outcomes and whether the run was stopped. `quiet_warnings` were printed already."""
    outcomes: list[Outcome] = []
    for i, job in enumerate(jobs):
        try:
            outcome = run_job(reconstructor, job, folder, options, cancel, console.note)
        except CancelledError:
            return outcomes, True
        outcomes.append(outcome)
        report_outcome(console, i, len(jobs), outcome, quiet_warnings)
    return outcomes, False


def report_name(shard: tuple[int, int] | None) -> str:
    return REPORT_NAME if shard is None else f"batch_report.shard-{shard[0]}-of-{shard[1]}.json"


def write_report(
    folder: Path, source: Path, jobs: Sequence[Job], outcomes: Sequence[Outcome], stopped: bool,
    shard: tuple[int, int] | None = None,
) -> Path:  # fmt: skip
    """OUT/batch_report.json (a shard's: batch_report.shard-I-of-N.json): every head's outcome, those not
    reached when the run was stopped too, merged into what other runs in OUT reported (merge_rows), under the
    report's lock so that two batches writing into one folder both count."""
    done = {o.name for o in outcomes}
    rows = [asdict(o) for o in outcomes] + [
        {"name": j.name, "status": "not run", "message": "the run was stopped first"}
        for j in jobs
        if j.name not in done
    ]
    path = folder / report_name(shard)
    folder.mkdir(parents=True, exist_ok=True)
    with head_lock(folder, path.stem, wait_s=REPORT_LOCK_WAIT_S):
        report = summarise(str(source), merge_rows(previous_rows(path), rows), stopped)
        if shard is not None:
            report["shard"] = list(shard)
        return atomic_write(path, lambda f: f.write(json.dumps(report, indent=1).encode()))


REPORT_LOCK_WAIT_S = 30.0  # another batch holds the report's lock only while it reads and rewrites it
FINISHED = ("ok", "skipped")  # statuses that mean the head's set is complete on disk


def previous_rows(path: Path) -> list[dict]:
    """The rows of an earlier report at `path`; none when there is none or it cannot be read."""
    try:
        rows = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str) and "status" in r]


def merge_rows(old: Sequence[dict], new: Sequence[dict]) -> list[dict]:
    """One row per head: this run's, except where an earlier run finished the head and this one did not (it
    found the head busy, failed before its commit, or was stopped first): sets are committed whole, so the
    head is still complete on disk and the earlier row stays true."""
    merged = {r["name"]: r for r in old}
    for row in new:
        before = merged.get(row["name"])
        if before is None or before["status"] not in FINISHED or row["status"] in FINISHED:
            merged[row["name"]] = row
    return list(merged.values())


def summarise(source: str, rows: Sequence[dict], stopped: bool) -> dict:
    rows = sorted(rows, key=lambda r: r["name"])
    count = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    return {"input": source, "photos": len(rows), "stopped": stopped, **count, "results": rows}


def merge_reports(folder: Path) -> Path:
    """`facesmith batch-merge`: the shards' reports in `folder` combined into batch_report.json; every shard
    of the same N must be there."""
    found = sorted(folder.glob("batch_report.shard-*-of-*.json"))
    if not found:
        raise FacesmithError(f"{folder}: no shard reports (batch_report.shard-I-of-N.json)")
    reports = [json.loads(p.read_text()) for p in found]
    counts = {r["shard"][1] for r in reports}
    if len(counts) != 1:
        raise FacesmithError(f"{folder}: shard reports of different N ({', '.join(map(str, sorted(counts)))})")
    (count,) = counts
    missing = sorted(set(range(1, count + 1)) - {r["shard"][0] for r in reports})
    if missing:
        raise FacesmithError(f"{folder}: shard(s) {', '.join(map(str, missing))} of {count} have no report yet")
    rows = [row for r in reports for row in r["results"]]
    merged = summarise(reports[0]["input"], rows, any(r["stopped"] for r in reports))
    return atomic_write(folder / REPORT_NAME, lambda f: f.write(json.dumps(merged, indent=1).encode()))
