"""Output paths of the command line: names and folders checked first, one writer per head, stale staging
removed, sets that appear complete or not at all. No Blender needed."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from facesmith.cli.heads import Job, Outcome, batch_jobs, merge_reports, parse_shard, shard_jobs, write_report
from facesmith.cli.outputs import (
    HeadBusyError,
    HeadFiles,
    OutputError,
    check_folder,
    check_json_path,
    check_name,
    commit,
    head_lock,
    remove_stale,
    staging,
)
from facesmith.inference.errors import FacesmithError


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a/b", "contains a path separator"),
        ("", "is empty"),
        ("..", "is not a file name"),
        (".hidden", "starts with '.'"),
        ("tab\there", "control characters"),
        ("x" * 201, "longer than 200 bytes"),
    ],
)
def test_bad_names_are_refused(name, reason):
    with pytest.raises(OutputError, match=reason):
        check_name(name)


@pytest.mark.parametrize("name", ["002_08", "Jo Smith", "ünïcode-name", "a.b"])
def test_good_names_pass(name):
    assert check_name(name) == name


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputError, match=r"out: exists and is not a folder"):
        check_folder(tmp_path / "out")
    with pytest.raises(OutputError, match=r"cannot be created, .*out is not a folder"):
        check_folder(tmp_path / "out" / "deeper")


def test_output_folder_to_be_created_is_fine(tmp_path):
    check_folder(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.parametrize(
    ("name", "reason"),
    [("result.npz", "takes a .json file path"), ("result", "takes a .json file path"), ("dir.json", "is a folder")],
)
def test_fit_json_path(tmp_path, name, reason):
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OutputError, match=reason):
        check_json_path(tmp_path / name)
    assert check_json_path(tmp_path / "ok.json") == tmp_path / "ok.json"


def test_set_is_complete_only_with_every_file(tmp_path):
    files = HeadFiles(tmp_path, "h", ("blend", "glb"), preview=False)
    assert [p.name for p in files.paths] == [
        "h.blend",
        "h.glb",
        "h_albedo.png",
        "h_displacement.png",
        "h_normal.png",
        "h_eyes.png",
        "h.json",
    ]  # the JSON last
    for p in files.paths[:-1]:
        p.write_text("x")
    assert not files.complete()  # a set without its JSON was interrupted: redo it
    files.report.write_text("{}")
    assert files.complete()


def test_commit_replaces_the_set_and_drops_files_it_no_longer_has(tmp_path):
    old = HeadFiles(tmp_path, "h", ("blend", "glb", "fbx"), preview=False)
    for p in old.paths:
        p.write_text("old")
    new = HeadFiles(tmp_path, "h", ("blend", "glb"), preview=False)  # --overwrite --no-fbx
    with head_lock(tmp_path, "h"), staging(tmp_path, "h") as staged:
        for p in new.paths:
            (staged / p.name).write_text("new")
        commit(staged, new)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "h.blend",
        "h.glb",
        "h.json",
        "h_albedo.png",
        "h_displacement.png",
        "h_eyes.png",
        "h_normal.png",
    ]
    assert all(p.read_text() == "new" for p in new.paths)


def test_commit_refuses_an_incomplete_staging(tmp_path):
    files = HeadFiles(tmp_path, "h", ("blend",), preview=False)
    with staging(tmp_path, "h") as staged:
        (staged / "h.json").write_text("{}")
        with pytest.raises(OutputError, match=r"not all files were written \(h.blend, h_albedo.png, "):
            commit(staged, files)
    assert list(tmp_path.iterdir()) == []


def test_a_head_has_one_writer(tmp_path):
    with head_lock(tmp_path, "h"):
        with pytest.raises(HeadBusyError, match="another Facesmith run is writing this head"):
            with head_lock(tmp_path, "h"):
                pass
        with head_lock(tmp_path, "other"):  # other heads are free
            pass
    with head_lock(tmp_path, "h"):  # released
        pass
    assert list(tmp_path.iterdir()) == []  # lock files go with their locks


def test_a_waiting_writer_gets_the_head_when_it_is_let_go(tmp_path):
    got = threading.Event()

    def waiter():
        with head_lock(tmp_path, "h", wait_s=30):
            got.set()

    with head_lock(tmp_path, "h"):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not got.wait(0.2)  # it waits while the head is held
    thread.join(30)
    assert got.is_set() and list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name == "nt", reason="on Windows filelock removes the file after closing it")
def test_the_lock_file_is_removed_while_still_locked(tmp_path, monkeypatch):
    """On POSIX the holder removes the lock file before it unlocks: removed after, a waiter could lock the file
    in between, lose it to the removal, and a third run would lock a new file beside it (two writers)."""
    import fcntl

    unlink, held = Path.unlink, []

    def checked_unlink(path, *args, **kwargs):
        if path.name == ".h.facesmith-lock":
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
            except BlockingIOError:
                held.append(True)
            finally:
                os.close(fd)
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", checked_unlink)
    with head_lock(tmp_path, "h"):
        pass
    assert held == [True] and list(tmp_path.iterdir()) == []


def test_stale_staging_is_removed_live_staging_is_kept(tmp_path):
    """A run killed outright leaves its staging folder and lock file; the lock itself died with it."""
    code = (
        "import os, sys; from pathlib import Path; from facesmith.cli.outputs import head_lock, staging\n"
        "folder = Path(sys.argv[1])\n"
        "with head_lock(folder, 'dead'), staging(folder, 'dead') as s:\n"
        "    (s / 'dead.blend').write_bytes(b'x' * 1000); print('ready', flush=True); os._exit(9)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert res.stdout.strip() == "ready" and res.returncode == 9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[0] == ".dead.facesmith-lock" and left[1].startswith(".dead.facesmith-staging-")
    with head_lock(tmp_path, "alive"), staging(tmp_path, "alive") as live:
        removed = remove_stale(tmp_path)
        assert [p.name for p in removed] == [left[1]] and live.is_dir()
        assert sorted(p.name for p in tmp_path.iterdir()) == [".alive.facesmith-lock", live.name]


def test_batch_names_never_collide(tmp_path):
    for name in ("a.jpg", "A.png", "b.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "front.jpg").write_bytes(b"x")
    jobs, notes = batch_jobs(tmp_path)
    assert [j.name for j in jobs] == ["A_png", "a_jpg", "b_jpg", "b_person"]
    assert len(notes) == 4 and "written as a_jpg" in " ".join(notes)


def test_a_folder_of_photos_is_one_person(tmp_path):
    person = tmp_path / "jo"
    person.mkdir()
    for name in ("left.jpg", "front.png", "right.webp", "notes.txt"):
        (person / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "solo.jpg").write_bytes(b"x")
    jobs, notes = batch_jobs(tmp_path)
    assert [(j.name, [p.name for p in j.photos]) for j in jobs] == [
        ("jo", ["front.png", "left.jpg", "right.webp"]), ("solo", ["solo.jpg"]),
    ]  # fmt: skip
    assert notes == []


def _last_run(folder, name: str) -> None:
    """The files a batch wrote for head `name` in `folder` (the PNG maps and preview look like photos)."""
    for path in HeadFiles(folder, name).paths:
        path.write_bytes(b"x")


@pytest.mark.parametrize("inside", [False, True], ids=["output_is_input", "output_inside_input"])
def test_a_rerun_never_reads_its_own_outputs_as_photos(tmp_path, inside):
    source = tmp_path / "in"
    source.mkdir()
    (source / "004_03.jpg").write_bytes(b"x")
    (source / "jo").mkdir()
    (source / "jo" / "front.jpg").write_bytes(b"x")
    output = source / "out" if inside else source
    output.mkdir(exist_ok=True)
    _last_run(output, "004_03")
    _last_run(output, "jo")
    (output / "gone.json").write_text("{}")  # a head whose photo was since removed: its recorded set
    _last_run(output, "gone")
    (output / "004_08_albedo.png").write_bytes(b"x")  # an interrupted commit: maps before its JSON
    (source / "004_08.jpg").write_bytes(b"x")
    (output / ".004_08.tmp.png").write_bytes(b"x")  # a temp file being written
    jobs, _ = batch_jobs(source, output)
    assert [(j.name, [p.name for p in j.photos]) for j in jobs] == [
        ("004_03", ["004_03.jpg"]), ("004_08", ["004_08.jpg"]), ("jo", ["front.jpg"]),
    ]  # fmt: skip


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "2/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(FacesmithError, match="--shard"):
        parse_shard(text)


def test_shards_partition_the_batch(tmp_path):
    for i in range(7):
        (tmp_path / f"{i:02d}.jpg").write_bytes(b"x")
    jobs, _ = batch_jobs(tmp_path)
    parts = [shard_jobs(jobs, i, 3) for i in (1, 2, 3)]
    assert sorted(j.name for part in parts for j in part) == [j.name for j in jobs]
    assert [len(p) for p in parts] == [3, 2, 2] and parse_shard("2/3") == (2, 3)


def test_merge_needs_every_shard_and_combines_them(tmp_path):
    jobs = [Job(n, ()) for n in ("a", "b", "c")]
    write_report(tmp_path, tmp_path, jobs[::2], [Outcome("a", "ok"), Outcome("c", "failed", "no face")], False, (1, 2))
    with pytest.raises(FacesmithError, match=r"shard\(s\) 2 of 2 have no report yet"):
        merge_reports(tmp_path)
    write_report(tmp_path, tmp_path, jobs[1:2], [Outcome("b", "skipped")], False, (2, 2))
    merged = json.loads(merge_reports(tmp_path).read_text())
    assert [r["name"] for r in merged["results"]] == ["a", "b", "c"]
    assert (merged["ok"], merged["skipped"], merged["failed"], merged["photos"]) == (1, 1, 1, 3)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facesmith.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write to. Root writes through permission bits, so as root: sysfs."""
    if os.geteuid() == 0:
        if not os.path.isdir("/sys/kernel") or _writable("/sys/kernel"):
            pytest.skip("running as root and /sys/kernel is missing or writable: no read-only folder to use")
        yield Path("/sys/kernel")
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def _writable(folder: str) -> bool:
    try:
        os.close(os.open(os.path.join(folder, ".facesmith-test"), os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        return False
    os.unlink(os.path.join(folder, ".facesmith-test"))
    return True


@pytest.mark.parametrize("command", ["reconstruct", "batch"])
def test_unwritable_output_fails_first_in_one_line(read_only_folder, tmp_path, command):
    folder = read_only_folder
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"not even read: the output check comes first")
    args = [str(photo), "-o", str(folder)] if command == "reconstruct" else [str(tmp_path), str(folder)]
    # The model named does not exist: had any work started, that would be the error.
    res = run_cli(command, *args, "--flame", str(tmp_path / "missing-model.npz"))
    assert res.returncode == 1 and res.stderr.strip() == f"facesmith: error: {folder}: not writable (Permission denied)"


def test_name_and_existing_file_fail_first(tmp_path):
    (tmp_path / "taken").write_text("a file")
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"x")
    res = run_cli("reconstruct", str(photo), "-o", str(tmp_path / "taken"))
    assert (
        res.returncode == 1
        and res.stderr.strip() == f"facesmith: error: {tmp_path / 'taken'}: exists and is not a folder"
    )
    res = run_cli("reconstruct", str(photo), "-o", str(tmp_path), "--name", "a/b")
    assert res.returncode == 1
    assert res.stderr.strip() == "facesmith: error: invalid name 'a/b': contains a path separator"
    res = run_cli("fit", str(photo), "--json", str(tmp_path / "x.npz"))
    assert res.returncode == 1 and "--json takes a .json file path" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.jpg", "taken"]  # nothing written


def test_two_batches_into_one_folder_both_count_in_the_report(tmp_path):
    """Batch B found A's heads busy (or was stopped) while A finished them: the report keeps A's rows, and B's own."""
    jobs = [Job(n, ()) for n in ("a", "b", "c")]
    write_report(tmp_path, tmp_path, jobs[:2], [Outcome("a", "ok"), Outcome("b", "ok")], False)
    busy = "another Facesmith run is writing this head"
    write_report(tmp_path, tmp_path, jobs, [Outcome("a", "failed", busy), Outcome("c", "ok")], True)
    report = json.loads((tmp_path / "batch_report.json").read_text())
    assert {r["name"]: r["status"] for r in report["results"]} == {"a": "ok", "b": "ok", "c": "ok"}
    assert (report["ok"], report["failed"], report["photos"]) == (3, 0, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the report's lock is gone


def test_an_unwritable_report_is_one_error_naming_it(tmp_path):
    (tmp_path / "batch_report.json").mkdir()  # cannot be replaced by a file
    with pytest.raises(FacesmithError, match=r"batch_report\.json: cannot be written"):
        write_report(tmp_path, tmp_path, [Job("a", ())], [Outcome("a", "ok")], False)


class _Failing:
    """A reconstructor whose run fails as `fail` does (no photos, no model: make_head only reaches run)."""

    def __init__(self, fail):
        self.fail = fail

    def run(self, photos, name, cancel, pins=()):
        self.fail(cancel)


def _run_job(tmp_path, fail, cancel=None):
    from facesmith.cli.heads import WriteOptions, run_job

    bugs: list[str] = []
    cancel = cancel or threading.Event()
    outcome = run_job(_Failing(fail), Job("h", ()), tmp_path, WriteOptions(("glb",), False, False), cancel, bugs.append)
    return outcome, bugs


def test_a_full_disk_fails_the_head_in_one_line(tmp_path):
    def full(cancel):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "h_albedo.png"))

    outcome, bugs = _run_job(tmp_path, full)
    assert outcome.status == "failed" and bugs == []
    assert outcome.message == f"{tmp_path / 'h_albedo.png'}: cannot be written (No space left on device)"


def test_blender_operator_errors_from_the_file_system_are_one_line(tmp_path):
    from facesmith.inference.files import WriteError, writing

    path = tmp_path / "h.glb"
    with pytest.raises(WriteError, match=r"h\.glb: cannot be written \(No space left on device\)$"):
        with writing(path):
            raise RuntimeError("Error: Python: Traceback ...\nOSError: [Errno 28] No space left on device: '/x'\n")
    with pytest.raises(RuntimeError, match="a bug"):  # anything else stays a traceback
        with writing(path):
            raise RuntimeError("a bug")


def test_a_second_ctrl_c_inside_a_blender_operator_stops_the_run(tmp_path):
    """The second signal's exception, raised inside the glTF exporter, comes out of bpy as a RuntimeError."""
    from facesmith.inference.errors import CancelledError

    def interrupted(cancel):
        cancel.set()  # the first Ctrl-C
        raise RuntimeError("Error: Python: Traceback (most recent call last):\n ...\nInterrupted: SIGINT\n")

    with pytest.raises(CancelledError):
        _run_job(tmp_path, interrupted)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # lock and staging gone


class _FailingReconstructor(_Failing):
    """`_Failing` as `cmd_reconstruct` uses a reconstructor: a context manager with a model."""

    model = type("Model", (), {"warnings": ()})()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def test_a_failed_reconstruct_leaves_no_folder_it_made(tmp_path, monkeypatch, capsys):
    from facesmith.inference.errors import NoFaceError

    cli_main = sys.modules["facesmith.cli.main"]  # `facesmith.cli.main` is also the function the package exports

    def no_face(cancel):
        raise NoFaceError("face.jpg: no face found")

    monkeypatch.setattr(cli_main, "_reconstructor", lambda args, console: _FailingReconstructor(no_face))
    photo = tmp_path / "face.jpg"
    photo.write_bytes(b"x")
    assert cli_main.main(["reconstruct", str(photo), "-o", str(tmp_path / "new" / "deeper")]) == 1
    assert "no face found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.jpg"]  # neither new/ nor new/deeper/
    (tmp_path / "kept").mkdir()  # a folder that was there before stays, empty or not
    assert cli_main.main(["reconstruct", str(photo), "-o", str(tmp_path / "kept")]) == 1
    assert (tmp_path / "kept").is_dir() and not list((tmp_path / "kept").iterdir())


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_output_folder_in_proc_says_why_in_one_line(tmp_path):
    res = run_cli("reconstruct", str(tmp_path / "face.jpg"), "-o", "/proc/x", "--flame", str(tmp_path / "no.npz"))
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == "facesmith: error: /proc/x: cannot be created in /proc (its file system takes no new files)"
    )


def test_a_symlink_loop_in_a_batch_is_reported_not_dropped(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    (tmp_path / "person").symlink_to(tmp_path / "person")  # a link to a person's folder, looping
    jobs, notes = batch_jobs(tmp_path)
    assert [j.name for j in jobs] == ["a", "broken", "loop"]  # each fails with its reason in the report
    assert notes == [f"{tmp_path / 'person'}: skipped, symbolic link loop (the link points back at itself)"]


@pytest.mark.parametrize(
    ("link", "reason"),
    [("photo.jpg", "symbolic link loop"), ("missing.jpg", r"broken symbolic link \(to .*missing\.jpg")],
)
def test_a_photo_link_that_leads_nowhere_says_why(tmp_path, link, reason):
    from facesmith.inference.images import ImageError, load_photo

    (tmp_path / "photo.jpg").symlink_to(tmp_path / link)
    with pytest.raises(ImageError, match=reason):
        load_photo(tmp_path / "photo.jpg")


def test_control_characters_in_file_names_never_reach_the_terminal(tmp_path):
    """ESC sequences (retitle, clear, recolour), CR and a bidirectional override in a photo's name; and a name that
    is not UTF-8. Every message that names the file shows them escaped."""
    name = "x\x1b]0;owned\x07\x1b[2J\x1b[31m\r\u202e.jpg"
    (tmp_path / name).write_bytes(b"not a photo")
    (tmp_path / os.fsdecode(b"raw\xff\x9b.jpg")).write_bytes(b"not a photo either")
    for args in (["fit", str(tmp_path / name)], ["batch", str(tmp_path), str(tmp_path / "out")]):
        res = subprocess.run([sys.executable, "-m", "facesmith.cli", *args], capture_output=True, timeout=300)
        text = res.stdout + res.stderr
        assert not any(c < 32 and c not in b"\t\n" or c == 0x7F for c in text), text
        assert "\u202e".encode() not in text and b"\xff" not in text and b"\xc2\x9b" not in text
        assert b"x\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m\\" in text  # each names the file, escaped


def test_ray_workers_temp_folders_are_removed_once_their_worker_is_gone(tmp_path):
    """A Ray worker keeps bpy's session folder (blender_*) in a folder of its own, locked while it lives; the folder
    of one killed outright (no exit handlers) is swept by the next worker, a live one's is kept."""
    from facesmith.cli.ray_engine import claim_temp_dir, sweep_temp_dirs

    live, fd = claim_temp_dir(tmp_path)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, sys; from pathlib import Path; from facesmith.cli.ray_engine import "
         "claim_temp_dir; path, _ = claim_temp_dir(Path(sys.argv[1])); (path / 'blender_x').mkdir(); print(path); "
         "os._exit(0)", str(tmp_path)], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(killed, "blender_x").is_dir()
    assert sweep_temp_dirs(tmp_path) == [Path(killed)]
    assert sorted(tmp_path.iterdir()) == [live]
    os.close(fd)
    assert sweep_temp_dirs(tmp_path) == [live]  # its lock is free once closed
