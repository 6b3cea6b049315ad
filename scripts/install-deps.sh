#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test dsinfer. Idempotent: packages
# already present are skipped, and apt-get update runs only when something is missing.
#   scripts/install-deps.sh            C++ toolchain and libraries
#   scripts/install-deps.sh --python   also the Python packages of tools/ (fixtures, peers)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git python3
  libabsl-dev libpcre2-dev libopenblas-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libssl-dev libcpp-httplib-dev prometheus  # server config, /metrics server, promtool
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

# --- ops checks: CI runs this block (small: prometheus_client only) ---
# tests/check_prometheus_text.py parses the /metrics exposition with prometheus_client.
# (Debian's own python3 refuses plain pip installs (PEP 668), hence the fallback.)
python3 -m pip install -q prometheus_client ||
  python3 -m pip install -q --break-system-packages prometheus_client ||
  echo "install-deps: prometheus_client not installed; metrics_exposition_python will skip"
# --- end ops checks ---

# --- Helm chart check (tools/check_helm.sh), opt-in: --helm (helm-python-sdk is ~75 MB) ---
if [[ " $* " == *" --helm "* ]]; then
  python3 -m pip install -q pyyaml kubernetes-validate helm-python-sdk
fi

if [[ "${1:-}" == "--python" ]]; then
  python3 -m pip install -q tokenizers safetensors numpy torch transformers
fi
