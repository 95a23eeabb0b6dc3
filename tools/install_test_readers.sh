#!/usr/bin/env bash
# Third-party readers the export tests use, from the registries: the Khronos glTF validator (npm, into
# .cache/node) and the Open Asset Import Library's command line (Debian's assimp-utils, needs root).
# Quiet and idempotent; what cannot be installed is reported, and its tests skip (fail under CI=true).
cd "$(dirname "$0")/.."
GLTF_VALIDATOR=gltf-validator@2.0.0-dev.3.10
if [ ! -f .cache/node/node_modules/gltf-validator/package.json ]; then
    if ! command -v npm >/dev/null || ! npm install --prefix .cache/node --no-audit --no-fund --silent "$GLTF_VALIDATOR" >/dev/null 2>&1; then
        echo "install_test_readers: could not install $GLTF_VALIDATOR (needs node and npm)" >&2
    fi
fi
if ! command -v assimp >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "install_test_readers: assimp missing; install Debian's assimp-utils (needs root)" >&2
    elif ! apt-get install -y -q assimp-utils >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1
        apt-get install -y -q assimp-utils >/dev/null 2>&1 || echo "install_test_readers: apt-get install assimp-utils failed" >&2
    fi
fi
exit 0
