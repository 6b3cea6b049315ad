#!/usr/bin/env bash
# Scrapes the metrics test program over HTTP and validates the text with an independent parser.
#   check_metrics_exposition.sh DUMP_BINARY promtool|python
# Exit 77 (ctest SKIP_RETURN_CODE) when python3 or prometheus_client is missing.
set -euo pipefail
dump=$1 mode=$2
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -t dsinfer-metrics.XXXXXX)
trap 'rm -f "$out"' EXIT

case $mode in
  promtool)
    if ! command -v promtool >/dev/null; then
      echo "FAIL: promtool not found; install the Debian package 'prometheus' (scripts/install-deps.sh)"
      exit 1
    fi
    "$dump" "$out"
    # Parses the exposition and lints names, units, HELP and counter suffixes; non-zero on any problem.
    promtool check metrics < "$out"
    echo "promtool check metrics: OK"
    ;;
  python)
    if ! command -v python3 >/dev/null; then
      echo "SKIP: python3 not found"
      exit 77
    fi
    if ! python3 -c 'import prometheus_client' 2>/dev/null; then
      echo "SKIP: python3 module prometheus_client missing (python3 -m pip install prometheus_client)"
      exit 77
    fi
    "$dump" "$out"
    python3 "$here/check_prometheus_text.py" "$out"
    ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
