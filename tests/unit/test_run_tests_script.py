"""run_tests.sh hands its arguments to pytest and keeps the default marker filter unless the caller gives a -m."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ..conftest import REPO

DEFAULT = ["-m", "not slow and not gpu and not needs_flame"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], DEFAULT),
        (["-x"], [*DEFAULT, "-x"]),  # extra options keep the fast default
        (["tests/unit", "-k", "albedo"], [*DEFAULT, "tests/unit", "-k", "albedo"]),
        (["-m", "slow"], ["-m", "slow"]),  # the caller's own filter replaces it
        (["-x", "-mslow"], ["-x", "-mslow"]),
    ],
)
def test_pytest_arguments(tmp_path, args, expected):
    """The script runs in a copy of the repository's layout whose setup steps and python are stubs; the stub
    python writes the arguments it was given, one a line."""
    shutil.copy(REPO / "run_tests.sh", tmp_path)
    stubs = {"setup.sh": "exit 0", "tools/install_test_readers.sh": "exit 0",
             ".venv/bin/python": 'printf "%s\\n" "$@" > "$(dirname "$0")/../../argv"'}  # fmt: skip
    for name, body in stubs.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (tmp_path / name).chmod(0o755)
    out = subprocess.run(["bash", str(tmp_path / "run_tests.sh"), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "argv").read_text().splitlines() == ["-m", "pytest", *expected]
