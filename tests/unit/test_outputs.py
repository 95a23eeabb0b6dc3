"""Output paths of the command line: names and folders checked first, one writer per head, stale staging
removed, sets that appear complete or not at all. No Blender needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
