#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test dsinfer. Idempotent: packages
# already present are skipped, and apt-get update runs only when something is missing.
#   scripts/install-deps.sh            C++ toolchain and libraries
#   scripts/install-deps.sh --python   also the Python packages of tools/ (fixtures, peers)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3
  libabsl-dev libpcre2-dev libicu-dev libopenblas-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libssl-dev libcpp-httplib-dev prometheus  # server config, tests' HTTP client, promtool
  libboost-dev  # Boost.Beast/Asio (header-only): the HTTP server (src/http)
  libgloo-dev  # CPU collectives between the ranks of a sharded model (Gloo over TCP)
  curl iproute2 procps  # multi-node tests: /readyz probes, network namespaces, pkill
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc openssl  # gRPC server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi

# --- Python packages the test suite uses (CI runs this block) ---
# prometheus_client parses /metrics; grpcio(-tools) runs examples/python_client.py; pyyaml,
# kubernetes-validate and helm-python-sdk (Helm's own renderer) check the Helm chart; openai (the
# official client) tests the OpenAI-compatible API.
# (Debian's own python3 refuses plain pip installs (PEP 668), hence the fallback.)
test_py=(prometheus_client grpcio grpcio-tools pyyaml kubernetes-validate helm-python-sdk openai)
python3 -m pip install -q "${test_py[@]}" ||
  python3 -m pip install -q --break-system-packages "${test_py[@]}" ||
  echo "install-deps: some Python test packages missing; the tests that need them will skip"
# --- end ---

if [[ "${1:-}" == "--python" ]]; then
  python3 -m pip install -q tokenizers safetensors numpy torch transformers
fi
