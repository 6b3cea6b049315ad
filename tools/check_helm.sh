#!/usr/bin/env bash
# Renders helm/dsinfer with real Helm (helm-python-sdk embeds Helm's Go SDK; no helm binary,
# no cluster) and validates the manifests offline: helm lint, Kubernetes OpenAPI schemas
# (kubernetes-validate, strict), cross-reference rules, and dsinfer's own parser on the rendered
# server config. Details: tools/check_helm.py.
#   tools/check_helm.sh [BUILD_DIR] [--out DIR]
# BUILD_DIR (default build) provides tests/server_config_check; without it that step is skipped.
# Exit 77 when a Python package is missing (scripts/install-deps.sh --helm installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $# -gt 0 ]] && shift
check_args=()
if [[ -x "$build/tests/server_config_check" ]]; then
  check_args+=(--config-check "$build/tests/server_config_check")
else
  echo "note: $build/tests/server_config_check not built; rendered server.yaml is not parsed"
fi
if ! command -v python3 >/dev/null; then
  echo "SKIP: python3 not found"
  exit 77
fi
exec python3 "$root/tools/check_helm.py" "${check_args[@]}" "$@"
