#!/usr/bin/env bash
# Sets up if needed (fast when already set up), then runs the test suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -m slow   or   ./run_tests.sh tests/unit -x
set -uo pipefail
cd "$(dirname "$0")"
./setup.sh >/dev/null || { echo "run_tests: setup.sh failed" >&2; exit 1; }
tools/install_test_readers.sh  # glTF validator and assimp for the export tests
export BLENDER_USER_RESOURCES="${BLENDER_USER_RESOURCES:-$(mktemp -d)}"
# The default marker filter stays unless the caller picks their own with -m (`./run_tests.sh -x` is still fast).
marked=0
for arg in "$@"; do case "$arg" in -m*) marked=1 ;; esac; done
if [ $marked -eq 0 ]; then set -- -m "not slow and not gpu and not needs_flame" "$@"; fi
.venv/bin/python -m pytest "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "run_tests: pytest collected no tests; that is a failure" >&2; exit 1; fi
exit $rc
