#!/usr/bin/env bash
# Configures and builds Kairo into build/ (RelWithDebInfo, warnings as errors). Usage: scripts/build.sh [extra cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKAIRO_WERROR=ON "$@" >/dev/null
cmake --build build --parallel "$(nproc)"
