#!/usr/bin/env bash
# Install, build everything (CUDA code too when nvcc is present) and run all tests.
# Tests labelled `gpu` skip themselves with a message where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)"
