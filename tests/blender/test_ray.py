"""`facesmith batch --engine ray` on a local Ray cluster on loopback, started and stopped by the test, with a
worker killed in the middle of a head: nothing lost, no partial files, the report complete; and a batch stopped by
Ctrl-C: no lock, staging folder or worker temporary (bpy's `blender_*`) left."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from facesmith.inference.flame.io import save_model_npz

from ..conftest import SHARED

FACES = SHARED / "data" / "faces"
pytestmark = pytest.mark.skipif(not FACES.is_dir(), reason=f"needs {FACES}")
PHOTOS = ("001_03", "002_03", "004_03", "005_03")
FILES = (".blend", ".fbx", ".glb", ".json", "_albedo.png", "_displacement.png", "_eyes.png", "_normal.png")


@pytest.fixture(scope="module")
def cluster():
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Ray is not installed: .ci/run installs requirements/ray.txt")
        pytest.skip("Ray is not installed (pip install -r requirements/ray.txt)")
    ray_cli = str(Path(sys.executable).parent / "ray")
    with socket.socket() as s:  # a free port on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    from facesmith.cli.ray_engine import LOCAL_ONLY

    # On loopback only, and with its own token (Ray's token authentication), whatever ~/.ray holds. Its own temp
    # folder (short: Ray's socket paths live under it), so that the test sees what the workers leave there.
    temp = Path(tempfile.mkdtemp(prefix="fs-ray-"))
    env = {**os.environ, **LOCAL_ONLY, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "TMPDIR": str(temp)}  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=120, env=env)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def worker_temporaries(env: dict) -> list[str]:
    """What Facesmith's workers left in the cluster's temp folder (Ray's own session folder aside)."""
    return sorted(p.name for p in Path(env["TMPDIR"]).iterdir() if p.name != "ray")


def batch_command(photos: Path, out: Path, model: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "facesmith.cli", "batch", str(photos), str(out), "--engine", "ray", "--address",
            address, "--workers", "2", "--no-preview", "--texture-size", "512", "--flame", str(model)]  # fmt: skip


def wait_for_a_head(proc: subprocess.Popen, out: Path) -> None:
    """Until a worker is in the middle of a head (its staging folder exists)."""
    end = time.monotonic() + 300  # only a guard against a hang
    while not (out.is_dir() and any(out.glob(".*.facesmith-staging-*")) and worker_pids(busy=True)):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.05)


def worker_pids(busy: bool) -> list[int]:
    """Ray names its actor processes after the class, and after the method while it runs one."""
    pattern = "ray::HeadWorker.make" if busy else "ray::HeadWorker"
    res = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


def test_ray_batch_survives_a_killed_worker(cluster, dev_model, tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    for name in PHOTOS:
        (photos / f"{name}.jpg").symlink_to(FACES / f"{name}.jpg")
    out = tmp_path / "out"
    model = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    address, env = cluster
    cmd = batch_command(photos, out, model, address)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_a_head(proc, out)
    victim = worker_pids(busy=True)[0]
    os.kill(victim, signal.SIGKILL)  # a worker dies in the middle of a head
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    report = json.loads((out / "batch_report.json").read_text())
    assert [(r["name"], r["status"]) for r in report["results"]] == [(n, "ok") for n in PHOTOS]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["batch_report.json"] + [f"{n}{s}" for n in PHOTOS for s in FILES]
    )  # every head complete, nothing partial, no staging folder or lock file left
    assert victim not in worker_pids(busy=False)  # the killed worker was replaced
    assert worker_temporaries(env) == []  # the killed worker's too (its replacement removed it)


@pytest.mark.slow
def test_ray_batch_stopped_by_ctrl_c_leaves_nothing(cluster, dev_model, tmp_path):
    photos = tmp_path / "in"
    photos.mkdir()
    for name in PHOTOS:
        (photos / f"{name}.jpg").symlink_to(FACES / f"{name}.jpg")
    out = tmp_path / "out"
    model = save_model_npz(dev_model, tmp_path / "dev_flame.npz")
    address, env = cluster
    proc = subprocess.Popen(batch_command(photos, out, model, address), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    wait_for_a_head(proc, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    report = json.loads((out / "batch_report.json").read_text())
    assert report["stopped"]
    left = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert left == []  # no .NAME.facesmith-lock, no staging folder
    assert worker_temporaries(env) == []  # no blender_* session folder, no worker temp folder
