#!/usr/bin/env bash
# scripts/gpu-check.sh where there is no GPU (CI): the summary tool on fixed Google Benchmark
# output (one file cut short by a timeout, one family it does not know), then the script itself
# with every part but the build: each says "skipped: no GPU" at once, nothing is appended to
# RESULTS.md, and $OUT holds only names the device tool brings back. Needs python3 (no torch).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d /tmp/gpu_check_test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
FIX=$ROOT/tests/fixtures/gpu_check

# 1. Kernel benchmark summary.
python3 "$ROOT/bench/gpu_check_report.py" kernels --out "$T/kernels.json" --rows "$T/rows.tsv" --part kernels \
  "$FIX"/kernels/*.json >"$T/kernels.txt" || fail "kernels summary exited $?"
grep -q 'copy bandwidth (cudaMemcpy D2D, read + write): 4000.0 GB/s' "$T/kernels.txt" || fail "copy bandwidth line"
grep -q '128 heads, ctx  4096:   1.6%   5.3%  16.9%' "$T/kernels.txt" || fail "MLA table row"
grep -q 'best 16.9% -> NOT met' "$T/kernels.txt" || fail "MLA goal line"
grep -q 'cut short by the time limit (entries before the cut kept): BM_GroupedGemm.json' "$T/kernels.txt" ||
  fail "truncated file not reported"
[[ $(grep -c 'TFLOP/s vs cuBLAS' "$T/kernels.txt") == 6 ]] || fail "6 complete grouped GEMM entries expected"
grep -q 'BM_GroupedGemmFp8/tokens:4096.*peer cublaslt_TFLOPs 1200.0; ratio 0.254' "$T/kernels.txt" ||
  fail "unknown family not summarised with its peer and ratio"
[[ $(wc -l <"$T/rows.tsv") == 13 ]] || fail "13 RESULTS.md rows expected, got $(wc -l <"$T/rows.tsv")"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d["benchmarks"]) == 20, len(d["benchmarks"])' \
  "$T/kernels.json" || fail "merged kernels.json"

# 2. Logits comparison (the tp check's bar).
echo '{"logits": [[1.0, -2.0], [0.5, 4.0]]}' >"$T/a.json"
printf 'loading weights: 100%%\n{"logits": [[1.0, -2.0], [0.5, 3.9]]}\n' >"$T/b.json"
rel=$(python3 "$ROOT/bench/gpu_check_report.py" compare-logits "$T/a.json" "$T/b.json" |
  python3 -c 'import json, sys; print(round(json.load(sys.stdin)["rel"], 6))')
[[ $rel == 0.025 ]] || fail "compare-logits rel $rel, want 0.025"

# 3. The script without a GPU: fast, every GPU part skipped, exit 0, RESULTS.md untouched.
PATH_NO_GPU=$(echo "$PATH" | tr ':' '\n' | while read -r d; do [[ -x $d/nvidia-smi ]] || echo "$d"; done | paste -sd:)
cp "$ROOT/bench/RESULTS.md" "$T/RESULTS.md"
start=$(date +%s)
PATH=$PATH_NO_GPU OUT=$T/out GC_WORK=$T/work GC_RESULTS=$T/RESULTS.md DSINFER_GPU_CHECK_BUDGET=60 \
  DSINFER_GPU_CHECK_PARTS="ctest kernels parallel e2e server sanitizer" \
  bash "$ROOT/scripts/gpu-check.sh" >"$T/run.log" 2>&1
rc=$?
((rc == 0)) || { cat "$T/run.log"; fail "gpu-check.sh exited $rc"; }
(($(date +%s) - start < 30)) || fail "the run without a GPU took over 30 s"
[[ $(grep -c 'skipped .*no GPU' "$T/out/summary.txt") == 6 ]] || { cat "$T/out/summary.txt"; fail "6 parts skipped for want of a GPU"; }
cmp -s "$ROOT/bench/RESULTS.md" "$T/RESULTS.md" || fail "RESULTS.md changed without a GPU"
for f in "$T"/out/*; do
  [[ $(basename "$f") =~ ^[A-Za-z0-9._-]+$ ]] || fail "bad name in OUT: $f"
done
(($(ls "$T/out" | wc -l) <= 8)) || fail "more than 8 files in OUT"
tar -tzf "$T/out/logs.tar.gz" >"$T/tar.txt" || fail "logs tarball unreadable"
grep -qx 'logs/summary.txt' "$T/tar.txt" || fail "logs tarball without summary.txt"
echo "1 passed, 0 failed"
