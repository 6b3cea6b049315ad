#!/usr/bin/env bash
# The one GPU check of the CUDA backend: configure, build the GPU tests, the CUDA benchmarks and
# the dsinfer binary, run `ctest -L gpu`, the benchmarks (JSON), a CLI smoke test and
# compute-sanitizer on small cases, and leave 7 files in $OUT (default /tmp/gpu-check-out):
# summary.txt (machine, part results, test errors), configure.log, build.log, ctest.log,
# bench.json, bench.log, cli.log (CLI and sanitizer). Every part has a time limit and the script
# goes on after a failing part; the exit status is that of the tests.
#
#   scripts/gpu-check.sh --fetch-deps   (on a Debian 12 machine with apt, before the GPU run)
#       downloads the .deb files of the build dependencies into .gpu-deps/ (~25 MB), for GPU
#       machines that lack the -dev packages and have no network: carry .gpu-deps with the tree.
#   scripts/gpu-check.sh                (on the GPU machine)
#       if configuring fails for want of packages, unpacks .gpu-deps/*.deb (those dpkg does not
#       list as installed) under /tmp/dsinfer-deps and configures against them; failing that
#       (gRPC and protobuf are not carried), configures a copy of the tree without the gRPC
#       server (proto/, src/server/), which none of the checked targets needs.
#
# Environment: OUT (results folder), DSINFER_GPU_CHECK_BUDGET (seconds for the whole script,
# default 540), JOBS (default nproc), BUILD (default build-gpu-check). For trying the carried
# packages on a machine that has them installed: DSINFER_FORCE_CARRIED_DEPS=1
# DSINFER_DEPS_IGNORE_DPKG=1.
set -uo pipefail
set -x
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DEPS_LIST=(
  libabsl-dev libabsl20220623 nlohmann-json3-dev
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 libquadmath0
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libyaml-cpp-dev libyaml-cpp0.7 libssl-dev libssl3 libcpp-httplib-dev libcpp-httplib0.11
  libbrotli-dev libbrotli1 zlib1g-dev pkgconf pkgconf-bin libpkgconf3
  libgloo-dev libgloo0 libhiredis-dev libhiredis0.14 libibverbs-dev libibverbs1
)

if [[ "${1:-}" == "--fetch-deps" ]]; then
  mkdir -p .gpu-deps
  (cd .gpu-deps && apt-get download "${DEPS_LIST[@]}") ||
    { apt-get update -qq && (cd .gpu-deps && apt-get download "${DEPS_LIST[@]}"); }
  du -sh .gpu-deps
  grep -qx '/.gpu-deps/' .git/info/exclude 2>/dev/null || echo '/.gpu-deps/' >>.git/info/exclude
  exit 0
fi

START=$(date +%s)
BUDGET=${DSINFER_GPU_CHECK_BUDGET:-540}
OUT=${OUT:-/tmp/gpu-check-out}
BUILD=${BUILD:-$ROOT/build-gpu-check}
JOBS=${JOBS:-$(nproc)}
DEPS_DIR=/tmp/dsinfer-deps
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

# Seconds for the next part: its cap, or what is left of the budget minus `reserve`.
limit() {
  local cap=$1 reserve=${2:-0} left
  left=$((BUDGET - ($(date +%s) - START) - reserve))
  ((left < 10)) && left=10
  ((cap < left)) && echo "$cap" || echo "$left"
}
note() { echo "$(($(date +%s) - START))s $*" | tee -a "$SUMMARY"; }

# ---- 1. Machine -------------------------------------------------------------------------------
set +x
{
  date -u
  nvidia-smi || true
  nvidia-smi --query-gpu=name,compute_cap,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
  nvcc --version || true
  g++ --version | head -1 || true
  cmake --version | head -1 || true
  ninja --version || true
  (. /etc/os-release && echo "$PRETTY_NAME") || true
  nproc
} >>"$SUMMARY" 2>&1
set -x

CC_MAJOR=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
case "$CC_MAJOR" in
  9.0) ARCH="90a-real" ;;
  "") ARCH="90a-real" ;;
  *) ARCH="native" ;;
esac

# ---- 2. Configure (with carried packages when the machine lacks them) -------------------------
CMAKE_EXTRA=()
SRC="$ROOT"
configure() {
  timeout "$(limit 150 300)" cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DDSINFER_CUDA=ON -DDSINFER_BUILD_TESTS=ON -DDSINFER_BUILD_BENCH=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${CMAKE_EXTRA[@]}"
}

use_carried_deps() {
  ls "$ROOT"/.gpu-deps/*.deb >/dev/null 2>&1 || { echo "no .gpu-deps/*.deb carried"; return 1; }
  rm -rf "$DEPS_DIR"
  mkdir -p "$DEPS_DIR"
  local f pkg
  for f in "$ROOT"/.gpu-deps/*.deb; do
    pkg=$(dpkg-deb -f "$f" Package 2>/dev/null || basename "$f" | cut -d_ -f1)
    if [[ "${DSINFER_DEPS_IGNORE_DPKG:-0}" != 1 ]] &&
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      echo "installed already: $pkg"
      continue
    fi
    dpkg-deb -x "$f" "$DEPS_DIR" || echo "could not unpack $f"
  done
  local lib="$DEPS_DIR/usr/lib/x86_64-linux-gnu" so name sys
  # Where the system has a library of the same soname, use it (LD_LIBRARY_PATH must not shadow
  # the system's libssl, zlib, ...).
  for so in "$lib"/*.so.* "$DEPS_DIR"/lib/x86_64-linux-gnu/*.so.*; do
    [[ -e "$so" || -L "$so" ]] || continue
    name=$(basename "$so")
    sys=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}')
    if [[ -n "$sys" && "$sys" != "$so" ]]; then ln -sf "$sys" "$so"; fi
  done
  # pkg-config files name /usr: point them into the unpacked tree.
  find "$DEPS_DIR" -name '*.pc' -exec sed -i \
    -e "s#=/usr\$#=$DEPS_DIR/usr#" -e "s#\([=IL ]\)/usr/#\1$DEPS_DIR/usr/#g" {} +
  # openblas.pc is an update-alternatives link on Debian: provide it directly.
  mkdir -p "$lib/pkgconfig"
  [[ -e "$lib/pkgconfig/openblas.pc" ]] ||
    cp "$lib/openblas-pthread/pkgconfig/openblas.pc" "$lib/pkgconfig/openblas.pc" 2>/dev/null || true
  [[ -e "$lib/libopenblas.so" ]] || ln -sf openblas-pthread/libopenblas.so "$lib/libopenblas.so"
  [[ -e "$lib/libopenblas.so.0" ]] || ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  export PATH="$DEPS_DIR/usr/bin:$PATH"
  export PKG_CONFIG_PATH="$lib/pkgconfig:$DEPS_DIR/usr/share/pkgconfig:$lib/openblas-pthread/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$lib:$lib/openblas-pthread:$DEPS_DIR/lib/x86_64-linux-gnu:$DEPS_DIR/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # usr/lib: libgloo.so
  export CMAKE_PREFIX_PATH="$DEPS_DIR/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  command -v pkg-config >/dev/null || ln -sf pkgconf "$DEPS_DIR/usr/bin/pkg-config"
  CMAKE_EXTRA=(-DPKG_CONFIG_EXECUTABLE="$(command -v pkg-config || echo "$DEPS_DIR/usr/bin/pkgconf")")
  return 0
}

# Last resort: a copy of the tree without the gRPC server (proto/, src/server/), which the GPU
# check does not need and whose packages are the largest; everything else is unchanged.
use_copy_without_server() {
  rm -rf /tmp/dsinfer-src
  mkdir -p /tmp/dsinfer-src
  tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude=./.gpu-deps --exclude=./.peers \
    --exclude=./gpu-check-out -cf - . | tar -C /tmp/dsinfer-src -xf -
  sed -i '/add_subdirectory(proto)/d' /tmp/dsinfer-src/CMakeLists.txt
  sed -i '/add_subdirectory(server)/d' /tmp/dsinfer-src/src/CMakeLists.txt
  SRC=/tmp/dsinfer-src
}

{
  if [[ "${DSINFER_FORCE_CARRIED_DEPS:-0}" == 1 ]]; then false; else configure; fi || {
    echo "== configure failed: trying the carried packages"
    use_carried_deps
    rm -rf "$BUILD"
    configure || {
      echo "== configure failed again: a copy of the tree without the gRPC server"
      use_copy_without_server
      rm -rf "$BUILD"
      configure
    }
  }
} >"$OUT/configure.log" 2>&1
CONFIGURE_RC=$?
note "configure rc=$CONFIGURE_RC (arch $ARCH, source $SRC)"

# ---- 3. Build the tests and benchmarks first, the dsinfer binary (gRPC server too) later ------
TARGETS=(kernels_gpu_test mla_attention_gpu_test moe_gpu_test sampling_gpu_test cuda_executor_test
         nccl_communicator_test cuda_kernels_bench nccl_comm_bench)
BUILD_RC=1
if ((CONFIGURE_RC == 0)); then
  timeout "$(limit 300 200)" cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" \
    >"$OUT/build.log" 2>&1
  BUILD_RC=$?
  if ((BUILD_RC != 0)); then  # build what still can be built, for the parts below
    timeout "$(limit 120 180)" cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}" -- -k 0 \
      >>"$OUT/build.log" 2>&1
  fi
fi
note "build rc=$BUILD_RC"
grep -E "error|FAILED" "$OUT/build.log" 2>/dev/null | head -20 >>"$SUMMARY"

# ---- 4. GPU tests -----------------------------------------------------------------------------
TEST_RC=1
if [[ -d "$BUILD" ]]; then
  (cd "$BUILD" && timeout "$(limit 300 100)" ctest -L gpu -j 4 --output-on-failure --timeout 240) \
    >"$OUT/ctest.log" 2>&1
  TEST_RC=$?
  grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|Not Run|rel err" "$OUT/ctest.log" |
    head -80 >>"$SUMMARY"
fi
note "ctest rc=$TEST_RC"

# ---- 5. Benchmarks ----------------------------------------------------------------------------
if [[ -x "$BUILD/bench/cuda_kernels_bench" ]]; then
  timeout "$(limit 180 60)" "$BUILD/bench/cuda_kernels_bench" --benchmark_format=json \
    >"$OUT/bench.json" 2>"$OUT/bench.log"
  note "bench rc=$?"
fi

# ---- 6. CLI smoke test (--device cuda against --device cpu), then compute-sanitizer ----------
{
  timeout "$(limit 150 20)" cmake --build "$BUILD" -j "$JOBS" --target dsinfer 2>&1 | tail -20
  DS="$BUILD/src/cli/dsinfer"
  if [[ -x "$DS" ]]; then
    M="$SRC/tests/fixtures/models/v2_lite_bf16"
    IDS=482,171,110,216,365,273,376,249,171
    timeout 60 "$DS" generate --model "$M" --ids $IDS --max-tokens 16 --ignore-eos --device cuda 2>&1 | tr '\r' '\n' | tail -2
    timeout 60 "$DS" generate --model "$M" --ids $IDS --max-tokens 16 --ignore-eos --device cpu 2>&1 | tr '\r' '\n' | tail -2
    timeout 60 "$DS" logits --model "$M" --ids 1,2,3 --device cuda 2>&1 | tr '\r' '\n' | tail -1 | head -c 300
    echo
    timeout 60 "$DS" bench --model "$M" --device cuda --batch 8 --prompt-len 64 --gen-len 16 2>&1 | tr '\r' '\n' | tail -1
  fi
  # Out-of-bounds and race checks on small cases of every kernel family.
  if command -v compute-sanitizer >/dev/null; then
    T="$BUILD/tests"
    for run in \
        "$T/kernels_gpu_test --gtest_filter=-*7168*" \
        "$T/mla_attention_gpu_test --gtest_filter=*len1*:*forced_splits*:*generic_48*:*prefill_chunks*" \
        "$T/moe_gpu_test --gtest_filter=*one_token*:*v3*:*StoreF32*:*Tokens/MoePipelineGpuTest.MatchesCpu/1" \
        "$T/sampling_gpu_test --gtest_filter=*top_k_1*:*small_vocab_all*" \
        "$T/cuda_executor_test --gtest_filter=*ExpertLoad*v2_lite*"; do
      for tool in memcheck racecheck; do
        ((BUDGET - ($(date +%s) - START) > 25)) || break 2
        echo "== compute-sanitizer --tool $tool $run"
        timeout "$(limit 60 5)" compute-sanitizer --tool "$tool" --error-exitcode 3 $run 2>&1 |
          grep -E "ERROR SUMMARY|Invalid|Race|out of bounds|PASSED|FAILED|error" | head -15
      done
    done
  fi
} >"$OUT/cli.log" 2>&1
note "cli and sanitizer: $(grep -c 'ERROR SUMMARY: [1-9]' "$OUT/cli.log") sanitizer runs with errors"

note "done: configure $CONFIGURE_RC, build $BUILD_RC, tests $TEST_RC"
ls -la "$OUT"
exit "$TEST_RC"
