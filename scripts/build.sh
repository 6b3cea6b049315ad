#!/usr/bin/env bash
# Configures and builds dsinfer into build/ (CUDA code too when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$jobs"
