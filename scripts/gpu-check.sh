#!/usr/bin/env bash
# The one prepared GPU run of the CUDA backend (issue 17, "GPU proof"): build, test and measure
# everything in one go, within a time budget the script enforces itself.
#
#   scripts/gpu-check.sh --fetch-deps
#       On a Debian 12 machine with apt (a developer's), before the GPU run: downloads the .deb
#       files of every build and run dependency the GPU machine lacks (abseil, gRPC + protobuf +
#       protoc + grpc_cpp_plugin and their runtime libraries, OpenBLAS, GoogleTest, Google
#       Benchmark, yaml-cpp, cpp-httplib, gloo, ...), drops what the build never reads (static
#       libraries that have a shared twin, docs, man pages) and repacks them, ~16 MB, into the
#       git-ignored .gpu-deps/. Carry that folder with the tree.
#   scripts/gpu-check.sh
#       On the GPU machine (no apt, no network). Writes into $OUT (default /tmp/gpu-check-out)
#       at most 8 files: summary.txt (which part passed, failed or was skipped, why, how long),
#       RESULTS.md (bench/RESULTS.md with this run's rows appended), logs.tar.gz (every log) and
#       kernels.json, e2e.json, serving.json, parallel.json. Exit status 0 when no part failed.
#
# Parts, in this order (cheap and most valuable first; each has a cap and the run goes on after
# a failing or timed-out part; one that cannot run says why):
#   1  build      CMake + ninja, CUDA for sm_90a, only the targets this run needs: dsinfer WITH
#                 the gRPC server, dsinfer-loadgen, the tiny-model tool, cuda_kernels_bench,
#                 nccl_comm_bench and every test labelled gpu. When configuring fails for want of
#                 packages, the carried .gpu-deps/*.deb are unpacked under /tmp/dsinfer-deps (those
#                 dpkg does not list as installed) and the configure repeated against them; NCCL
#                 is taken from the CUDA toolkit or PyTorch's nvidia-nccl wheel.
#   1t ctest      ctest -L gpu, pass/fail per test.
#   2  kernels    cuda_kernels_bench, every benchmark family it has (--benchmark_format=json):
#                 copy bandwidth, MLA decode at 16 / 128 heads vs copy bandwidth, grouped GEMM
#                 bf16 (and FP8 when present) vs cuBLAS / cuBLASLt dense of equal FLOPs.
#   5  parallel   bench/gpu_parallel_check.sh: logits and 12-token greedy of --tp 2 and
#                 --tp 2 --ep 2 (ranks sharing the GPU) against one rank on the v2_lite_bf16 and
#                 v3_fp8 fixtures; nccl_communicator_test on every GPU present.
#   3  e2e        bench/gpu_e2e.sh: a DeepSeek-V2-Lite-config model (27 layers, random bf16,
#                 31 GB) and a V3-dimension FP8 model (2 layers, one MoE), drawn on the GPU:
#                 dsinfer bench --device cuda at batch 1 (2048-token prompt) / 32 / 128 against
#                 HF transformers on the same GPU and weights; tok/s, ratio, decode step vs its
#                 memory roofline. Each model is deleted when done.
#   4  server     bench/gpu_serving_check.sh: dsinfer serve (backend: cuda, the bundled tiny
#                 model) under dsinfer-loadgen, 64 clients, mixed priorities; one greedy request
#                 alone and again while the load runs, outputs compared.
#   6  sanitizer  compute-sanitizer memcheck on small cases of every kernel test (time allowing).
#
# Environment: OUT; DSINFER_GPU_CHECK_BUDGET (seconds for the whole script, default 540);
# DSINFER_GPU_CHECK_PARTS (default "build ctest kernels parallel e2e server sanitizer");
# DSINFER_GPU_CHECK_CAPS ("part=seconds ...", to change a part's cap); BUILD (default
# build-gpu-check); JOBS (default nproc); GC_COMMIT (the commit to name in RESULTS.md: the tree
# arrives on the GPU machine without .git); GC_WORK (scratch, default /tmp/gpu-check-work);
# GC_RESULTS (where the rows go, default bench/RESULTS.md). DSINFER_GPU_CHECK_DEVICE=cpu rehearses
# parts 3-5 on a CPU (--device cpu, backend: cpu, small models, no RESULTS.md rows) to try the
# script's logic where there is no GPU. For trying the carried packages where the -dev packages
# are installed: DSINFER_FORCE_CARRIED_DEPS=1 DSINFER_DEPS_IGNORE_DPKG=1. Without a GPU every GPU
# part is skipped at once ("no GPU").
set -uo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT=$(cd "$(dirname "$SELF")/.." && pwd)
cd "$ROOT" || exit 1

# ---- Command-line spellings the parts use (part 5's --tp on --device cuda is new) ----------
export GC_DEVICE_FLAG=--device GC_TP_FLAG=--tp GC_EP_FLAG=--ep

DEPS_LIST=(
  libabsl-dev libabsl20220623 nlohmann-json3-dev
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libopenblas0 libgfortran5 libquadmath0
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libyaml-cpp-dev libyaml-cpp0.7 libssl-dev libssl3 libcpp-httplib-dev libcpp-httplib0.11
  libbrotli-dev libbrotli1 zlib1g-dev pkgconf pkgconf-bin libpkgconf3
  libgloo-dev libgloo0 libhiredis-dev libhiredis0.14 libibverbs-dev libibverbs1
  libnl-3-200 libnl-route-3-200  # libibverbs1 (under libgloo0) needs them to link and run
  # gRPC server and dsinfer-loadgen: headers, CMake configs, protoc, grpc_cpp_plugin, runtime
  libgrpc++-dev libgrpc-dev libgrpc++1.51 libgrpc29 protobuf-compiler-grpc
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler
  libc-ares-dev libc-ares2 libre2-dev libre2-9
)

# --fetch-deps: download, trim (a static library whose shared twin is carried, docs, manuals)
# and repack each package as a .deb again, so the GPU side unpacks them with dpkg-deb as before.
fetch_deps() {
  local tmp deb stage a
  tmp=$(mktemp -d /tmp/gpu-deps.XXXXXX) || return 1
  mkdir -p "$tmp/debs" "$tmp/stage"
  (cd "$tmp/debs" && apt-get download "${DEPS_LIST[@]}") ||
    { apt-get update -qq && (cd "$tmp/debs" && apt-get download "${DEPS_LIST[@]}"); } || {
    echo "apt-get download failed" >&2
    rm -rf "$tmp"
    return 1
  }
  for deb in "$tmp"/debs/*.deb; do
    stage="$tmp/stage/$(basename "$deb" .deb)"
    dpkg-deb -R "$deb" "$stage" || return 1
    rm -rf "$stage"/usr/share/{doc,man,info,lintian,bug,doc-base} "$stage/DEBIAN/md5sums"
  done
  # X.a goes when X.so is carried at the same path (in any package): the build links the .so.
  while IFS= read -r a; do
    local rel=${a#"$tmp"/stage/*/}
    if compgen -G "$tmp/stage/*/${rel%.a}.so" >/dev/null; then rm -f "$a"; fi
  done < <(find "$tmp/stage" \( -type f -o -type l \) -name '*.a')
  rm -rf .gpu-deps
  mkdir -p .gpu-deps
  find "$tmp"/stage -mindepth 1 -maxdepth 1 -print0 |
    xargs -0 -P "$(nproc)" -I{} sh -c 'dpkg-deb --root-owner-group -Zxz -z9 -b "$1" ".gpu-deps/$(basename "$1").deb" >/dev/null' _ {} ||
    return 1
  rm -rf "$tmp"
  ls .gpu-deps | sed 's/_.*//' | tr '\n' ' '
  echo
  du -sh .gpu-deps
}

if [[ "${1:-}" == "--fetch-deps" ]]; then
  fetch_deps
  exit $?
fi

# ---- Settings shared by the main run and its parts (exported: parts run as `$SELF --part ID`)
export GC_START=${GC_START:-$(date +%s)}
export GC_BUDGET=${GC_BUDGET:-${DSINFER_GPU_CHECK_BUDGET:-540}}
export OUT=${OUT:-/tmp/gpu-check-out}
export GC_WORK=${GC_WORK:-/tmp/gpu-check-work}
export BUILD=${BUILD:-$ROOT/build-gpu-check}
export JOBS=${JOBS:-$(nproc)}
export GC_DEVICE=${GC_DEVICE:-${DSINFER_GPU_CHECK_DEVICE:-cuda}}
export GC_RESULTS=${GC_RESULTS:-$ROOT/bench/RESULTS.md}
export GC_DEPS_DIR=/tmp/dsinfer-deps
export GC_RESERVE=${GC_RESERVE:-20}  # seconds kept for the summary, RESULTS.md and the tarball
export GC_PY_LD_LIBRARY_PATH=${GC_PY_LD_LIBRARY_PATH-${LD_LIBRARY_PATH:-}}  # Python peers: unchanged
LOGS=$GC_WORK/logs
[[ "${1:-}" == "--part" ]] || rm -rf "$GC_WORK"
DS=$BUILD/src/cli/dsinfer

# shellcheck source=bench/gpu_check_lib.sh
. "$ROOT/bench/gpu_check_lib.sh"
# Seconds left of the whole budget, less the final reserve.
budget_left() { echo $((GC_BUDGET - ($(date +%s) - GC_START) - GC_RESERVE)); }
# Whether a GPU part runs: on a GPU, or rehearsed on the CPU; records the skip otherwise.
needs_device() {
  [[ $GC_DEVICE == cpu ]] && return 0
  have_gpu && return 0
  status skip "no GPU (nvidia-smi lists none)"
  return 1
}

# ---- Part 1: build --------------------------------------------------------------------------
cuda_arch() {
  local cc
  cc=$(timeout 20 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')
  case "$cc" in
    9.0 | "") echo 90a-real ;;  # H100 / H200; the default where no GPU answers
    *) echo native ;;
  esac
}

# NCCL for dsinfer_comm_nccl: the toolkit's, the system's, or PyTorch's nvidia-nccl wheel (which
# has libnccl.so.2 but no libnccl.so: linked through /tmp/dsinfer-nccl). Prints a root or nothing.
find_nccl() {
  local d
  for d in ${GC_NCCL_CANDIDATES-${NCCL_ROOT:-} /usr/local/cuda /usr}; do
    [[ -n $d && -f $d/include/nccl.h ]] || continue
    compgen -G "$d/lib*/libnccl.so" >/dev/null || compgen -G "$d/lib/x86_64-linux-gnu/libnccl.so" >/dev/null ||
      continue
    echo "$d"
    return
  done
  d=$(py -c 'import importlib.util as u; s = u.find_spec("nvidia.nccl"); print(list(s.submodule_search_locations)[0])' \
    2>/dev/null)
  if [[ -n $d && -f $d/include/nccl.h && -e $d/lib/libnccl.so.2 ]]; then
    rm -rf /tmp/dsinfer-nccl
    mkdir -p /tmp/dsinfer-nccl/lib
    ln -s "$d/include" /tmp/dsinfer-nccl/include
    ln -s "$d/lib/libnccl.so.2" /tmp/dsinfer-nccl/lib/libnccl.so.2
    ln -s libnccl.so.2 /tmp/dsinfer-nccl/lib/libnccl.so
    echo /tmp/dsinfer-nccl
  fi
}

# Unpacks the carried packages (those dpkg does not list as installed) under $GC_DEPS_DIR and
# writes $GC_WORK/deps.env, which every later part sources.
use_carried_deps() {
  compgen -G "$ROOT/.gpu-deps/*.deb" >/dev/null || { echo "no .gpu-deps/*.deb carried"; return 1; }
  rm -rf "$GC_DEPS_DIR"
  mkdir -p "$GC_DEPS_DIR"
  local f pkg n=0 skipped=()
  for f in "$ROOT"/.gpu-deps/*.deb; do
    pkg=$(dpkg-deb -f "$f" Package 2>/dev/null || basename "$f" | cut -d_ -f1)
    if [[ "${DSINFER_DEPS_IGNORE_DPKG:-0}" != 1 ]] &&
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      skipped+=("$pkg")
      continue
    fi
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$GC_DEPS_DIR" || { echo "could not unpack $f"; continue; }
    else  # a .deb is an ar archive: data.tar.* holds the files
      (cd "$GC_DEPS_DIR" && ar p "$f" "$(ar t "$f" | grep '^data\.tar')" | tar -xJf -) ||
        { echo "could not unpack $f"; continue; }
    fi
    n=$((n + 1))
  done
  echo "unpacked $n carried packages into $GC_DEPS_DIR; installed already: ${skipped[*]:-none}"
  local lib="$GC_DEPS_DIR/usr/lib/x86_64-linux-gnu" so name sys
  # A -dev package's libX.so link whose runtime package is not carried (zlib1g: on every
  # system) points at the system's libX.so.N.
  for so in "$lib"/*.so; do
    [[ -L "$so" && ! -e "$so" ]] || continue
    name=$(basename "$so")
    sys=$(ldconfig -p | awk -v n="$name." 'index($1, n) == 1 {print $NF; exit}')
    [[ -n "$sys" ]] && ln -sf "$sys" "$so"
  done
  # Where the system has a library of the same soname, use it (LD_LIBRARY_PATH must not shadow
  # the system's libssl, zlib, libstdc++ ...).
  for so in "$lib"/*.so.* "$GC_DEPS_DIR"/lib/x86_64-linux-gnu/*.so.*; do
    [[ -e "$so" || -L "$so" ]] || continue
    name=$(basename "$so")
    sys=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}')
    if [[ -n "$sys" && "$sys" != "$so" ]]; then ln -sf "$sys" "$so"; fi
  done
  # pkg-config files name /usr: point them into the unpacked tree.
  find "$GC_DEPS_DIR" -name '*.pc' -exec sed -i \
    -e "s#=/usr\$#=$GC_DEPS_DIR/usr#" -e "s#\([=IL ]\)/usr/#\1$GC_DEPS_DIR/usr/#g" {} +
  # Some CMake package files name /usr outright (Debian's Gloo: IMPORTED_LOCATION
  # "/usr/lib/libgloo.so.0.5.0"; OpenBLAS, Hiredis): point them into the unpacked tree too.
  find "$GC_DEPS_DIR" -name '*.cmake' -exec sed -i -e "s#\"/usr/#\"$GC_DEPS_DIR/usr/#g" \
    -e "s#\"/usr\"#\"$GC_DEPS_DIR/usr\"#g" -e "s#\([ (]\)/usr/#\1$GC_DEPS_DIR/usr/#g" {} +
  # openblas.pc and libopenblas.so are update-alternatives links on Debian: provide them.
  mkdir -p "$lib/pkgconfig"
  [[ -e "$lib/pkgconfig/openblas.pc" ]] ||
    cp "$lib/openblas-pthread/pkgconfig/openblas.pc" "$lib/pkgconfig/openblas.pc" 2>/dev/null || true
  [[ -e "$lib/libopenblas.so" ]] || ln -sf openblas-pthread/libopenblas.so "$lib/libopenblas.so"
  [[ -e "$lib/libopenblas.so.0" ]] || ln -sf openblas-pthread/libopenblas.so.0 "$lib/libopenblas.so.0"
  [[ -e "$GC_DEPS_DIR/usr/bin/pkg-config" ]] || command -v pkg-config >/dev/null ||
    ln -sf pkgconf "$GC_DEPS_DIR/usr/bin/pkg-config"
  cat >>"$GC_WORK/deps.env" <<EOF
export PATH="$GC_DEPS_DIR/usr/bin:\$PATH"
export PKG_CONFIG_PATH="$lib/pkgconfig:$GC_DEPS_DIR/usr/share/pkgconfig:$lib/openblas-pthread/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$lib:$lib/openblas-pthread:$GC_DEPS_DIR/lib/x86_64-linux-gnu:$GC_DEPS_DIR/usr/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CMAKE_PREFIX_PATH="$GC_DEPS_DIR/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
export CPATH="$GC_DEPS_DIR/usr/include/x86_64-linux-gnu\${CPATH:+:\$CPATH}"  # multiarch headers: openssl/opensslconf.h
EOF
  # shellcheck source=/dev/null
  . "$GC_WORK/deps.env"
  return 0
}

# Last resort: a copy of the tree without the gRPC server (proto/, src/server/): parts 2, 3 and
# 5 still run; part 4 cannot.
use_copy_without_server() {
  rm -rf /tmp/dsinfer-src
  mkdir -p /tmp/dsinfer-src
  tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude=./.gpu-deps --exclude=./.peers \
    -cf - . | tar -C /tmp/dsinfer-src -xf -
  sed -i '/add_subdirectory(proto)/d' /tmp/dsinfer-src/CMakeLists.txt
  sed -i '/add_subdirectory(server)/d' /tmp/dsinfer-src/src/CMakeLists.txt
}

# Test targets labelled gpu in tests/*.cmake (dsinfer_add_test(NAME ... LABELS ... gpu ...)).
gpu_test_targets() {
  awk '/dsinfer_add_test\(/ {blk = ""; on = 1}
       on {blk = blk " " $0; if ($0 ~ /\)[[:space:]]*$/) {on = 0
             if (blk ~ /LABELS[^)]*[[:space:],]gpu([[:space:],)]|$)/) {
               match(blk, /dsinfer_add_test\([A-Za-z0-9_]+/); print substr(blk, RSTART + 17, RLENGTH - 17)}}}' \
    "$ROOT"/tests/*.cmake
}

part_build() {
  local src=$ROOT arch nccl how=system rc cmake_major
  : >"$GC_WORK/deps.env"
  if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    echo 'export PATH="/usr/local/cuda/bin:$PATH"' >>"$GC_WORK/deps.env"
    . "$GC_WORK/deps.env"
  fi
  arch=$(cuda_arch)
  nccl=$(find_nccl)
  if [[ $nccl == /tmp/dsinfer-nccl ]]; then
    echo "export LD_LIBRARY_PATH=\"/tmp/dsinfer-nccl/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\"" >>"$GC_WORK/deps.env"
  fi
  cmake_major=$(cmake --version | head -1 | sed 's/[^0-9]*\([0-9]*\).*/\1/')
  configure() {
    local extra=()
    [[ -n $nccl ]] && extra+=(-DNCCL_ROOT="$nccl")
    ((cmake_major >= 4)) && extra+=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5)
    command -v nvcc >/dev/null && extra+=(-DDSINFER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch")
    command -v pkg-config >/dev/null || extra+=(-DPKG_CONFIG_EXECUTABLE="$GC_DEPS_DIR/usr/bin/pkgconf")
    echo "== cmake -S $src -B $BUILD ${extra[*]}"
    timeout -k 5 120 cmake -S "$src" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDSINFER_BUILD_TESTS=ON -DDSINFER_BUILD_BENCH=ON "${extra[@]}"
  }
  # A build folder configured from another source tree cannot be reused.
  if [[ -f $BUILD/CMakeCache.txt ]] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
  fi
  # A build folder configured against the carried packages before (a second run on the same
  # machine) is configured against them again: its cache would hide that they are needed.
  local carried_first=0
  grep -qs "$GC_DEPS_DIR" "$BUILD/CMakeCache.txt" && carried_first=1
  [[ "${DSINFER_FORCE_CARRIED_DEPS:-0}" == 1 ]] && carried_first=1
  {
    if ((carried_first)); then
      how=carried
      use_carried_deps && configure
    else
      configure || {
        echo "== configure failed: trying the carried packages"
        how=carried
        use_carried_deps && rm -rf "$BUILD" && configure
      }
    fi || {
      echo "== configure failed again: a copy of the tree without the gRPC server"
      how=no-server
      use_copy_without_server
      src=/tmp/dsinfer-src
      rm -rf "$BUILD"
      configure
    }
  } >"$LOGS/configure.log" 2>&1
  rc=$?
  if ((rc != 0)); then
    # The last attempt's first error says most.
    status fail "configure failed ($how): $(awk '/^== /{buf=""} {buf = buf $0 "\n"} END{printf "%s", buf}' \
      "$LOGS/configure.log" | grep -m1 -A3 'CMake Error' | tr -s ' \n' ' ' | cut -c1-300)"
    return
  fi
  local with="the machine's packages"
  [[ $how != system ]] && with="the carried .gpu-deps packages"
  [[ $how == no-server ]] && with+=", WITHOUT the gRPC server (it failed to configure)"
  detail "configured with $with, CUDA arch $arch, NCCL ${nccl:-not found}, $(cmake --version | head -1)," \
    "nvcc $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'none')"

  local want=(dsinfer dsinfer-loadgen dsinfer-make-tiny-model cuda_kernels_bench nccl_comm_bench)
  mapfile -t -O ${#want[@]} want < <(gpu_test_targets)
  local known targets=() missing=() t
  known=$(ninja -C "$BUILD" -t targets all 2>/dev/null | sed -n 's/^\([A-Za-z0-9_.-]*\): phony$/\1/p')
  for t in "${want[@]}"; do
    if grep -qx -- "$t" <<<"$known"; then targets+=("$t"); else missing+=("$t"); fi
  done
  local t0=$SECONDS
  timeout -k 5 "$(tleft 8)" cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}" -- -k 0 \
    >"$LOGS/build.log" 2>&1
  rc=$?
  local built=() failed=()
  for t in "${targets[@]}"; do
    if timeout 20 ninja -C "$BUILD" -n "$t" 2>/dev/null | grep -q 'no work to do'; then
      built+=("$t")
    else failed+=("$t"); fi
  done
  detail "built ${#built[@]}/${#targets[@]} targets in $((SECONDS - t0))s with -j $JOBS" \
    "${missing[*]:+; not in this build: ${missing[*]}}${failed[*]:+; NOT BUILT: ${failed[*]}}"
  row "cmake --build build-gpu-check -j $JOBS --target (${#targets[@]} targets: dsinfer, loadgen, GPU tests, benchmarks)" \
    "${#built[@]}/${#targets[@]} built in $((SECONDS - t0)) s (CUDA $arch; $how packages)" "" ""
  if [[ -x $DS ]] && "$DS" serve 2>&1 | grep -q 'unknown command'; then
    detail "dsinfer was built WITHOUT the gRPC server (no serve / client)"
  fi
  grep -E '(error|FAILED):' "$LOGS/build.log" | head -5 | while IFS= read -r l; do detail "  ${l:0:200}"; done
  if ((rc == 124)); then
    status fail "build stopped at the budget; ${#built[@]}/${#targets[@]} targets built"
  elif ((rc != 0)) || ((${#failed[@]})); then
    status fail "build errors; not built: ${failed[*]:-see build.log}"
  elif [[ $how == no-server ]] || ((${#missing[@]})); then
    status fail "built, but without: ${missing[*]:-the gRPC server}"
  else
    status pass "${#built[@]} targets, $([[ $how == carried ]] && echo 'carried deps' || echo 'system deps')"
  fi
}

# ---- Part 1t: ctest -L gpu --------------------------------------------------------------------
part_ctest() {
  have_gpu || { status skip "no GPU (nvidia-smi lists none; the tests would skip themselves)"; return; }
  [[ -f $BUILD/CTestTestfile.cmake ]] || { status fail "no build to test"; return; }
  local rc
  (cd "$BUILD" && timeout -k 5 "$(tleft 5)" ctest -L gpu -j 4 --timeout 100 --output-on-failure) \
    >"$LOGS/ctest.log" 2>&1
  rc=$?
  local line failed
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$LOGS/ctest.log" | tail -1)
  failed=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(.*\))$/\1 (\2)/p' "$LOGS/ctest.log" | head -12 | tr '\n' ';')
  detail "${line:-no ctest summary line (rc $rc)}"
  local skipped
  skipped=$(grep -c '\[  SKIPPED \]' "$LOGS/ctest.log" || true)
  ((skipped > 0)) && detail "gtest cases reporting SKIPPED: $skipped"
  [[ -n $failed ]] && detail "failed: ${failed%;}"
  grep -E '^\[  FAILED  \]|rel err|Failure' "$LOGS/ctest.log" | sort -u | head -8 |
    while IFS= read -r l; do detail "  ${l:0:200}"; done
  if ((rc == 124)); then status fail "timed out; ${line:-no summary}"
  elif ((rc == 0)); then status pass "${line:-all passed}"
  else status fail "${line:-ctest exit $rc}"; fi
  [[ -n $line ]] && row "ctest -L gpu (build-gpu-check)" "$line" "" ""
}

# ---- Part 2: kernel benchmarks ----------------------------------------------------------------
part_kernels() {
  have_gpu || { status skip "no GPU (nvidia-smi lists none)"; return; }
  local bin=$BUILD/bench/cuda_kernels_bench
  [[ -x $bin ]] || { status fail "cuda_kernels_bench was not built"; return; }
  local fams=() f n left lim rc failed=() ok=0
  mapfile -t fams < <(timeout 30 "$bin" --benchmark_list_tests=true 2>/dev/null | sed 's#/.*##' | awk '!s[$0]++')
  ((${#fams[@]})) || { status fail "cuda_kernels_bench lists no benchmarks"; return; }
  n=${#fams[@]}
  mkdir -p "$GC_WORK/kernels"
  # One process per family: a slow or crashing family costs only itself.
  for f in "${fams[@]}"; do
    left=$(($(tleft) - 8))
    ((left > 5)) || { failed+=("$f (no time left)"); continue; }
    lim=$((left / n > 20 ? left / n : (left < 20 ? left : 20)))
    timeout -k 5 "$lim" "$bin" --benchmark_filter="^$f(/|\$)" --benchmark_format=json \
      --benchmark_out="$GC_WORK/kernels/$f.json" --benchmark_out_format=json \
      >"$LOGS/kernels_$f.txt" 2>&1
    rc=$?
    if ((rc == 0)); then ok=$((ok + 1)); else failed+=("$f (rc $rc$( ((rc == 124)) && echo ", ${lim}s limit"))"); fi
    n=$((n - 1))
  done
  py "$ROOT/bench/gpu_check_report.py" kernels --out "$OUT/kernels.json" --rows "$GC_WORK/rows.tsv" \
    --part "$GC_PART" "$GC_WORK"/kernels/*.json >"$GC_WORK/kernels/summary.txt" 2>"$LOGS/kernels_report.log"
  while IFS= read -r l; do detail "$l"; done <"$GC_WORK/kernels/summary.txt"
  if ((${#failed[@]})); then status fail "$ok/${#fams[@]} families ran; failed: ${failed[*]}"
  else status pass "${#fams[@]} benchmark families (${fams[*]})"; fi
}

# ---- Part 5: tp / ep ranks on the GPU, NCCL ---------------------------------------------------
part_parallel() {
  needs_device || return
  [[ -x $DS ]] || { status fail "dsinfer was not built"; return; }
  bash "$ROOT/bench/gpu_parallel_check.sh"
}

# ---- Part 3: end to end vs HF transformers ----------------------------------------------------
part_e2e() {
  needs_device || return
  [[ -x $DS ]] || { status fail "dsinfer was not built"; return; }
  bash "$ROOT/bench/gpu_e2e.sh"
}

# ---- Part 4: the server under load ------------------------------------------------------------
part_server() {
  needs_device || return
  bash "$ROOT/bench/gpu_serving_check.sh"
}

# ---- Part 6: compute-sanitizer ----------------------------------------------------------------
part_sanitizer() {
  have_gpu || { status skip "no GPU (nvidia-smi lists none)"; return; }
  command -v compute-sanitizer >/dev/null || { status skip "compute-sanitizer not on PATH"; return; }
  local T=$BUILD/tests runs=() run bin errors=0 done_runs=0 clean=0 out
  # Small cases of every kernel family. Parameterised names carry the index, not the case name
  # (check with `<test> --gtest_list_tests`, which runs without a GPU); a filter that matches
  # nothing says so.
  runs=(
    "kernels_gpu_test --gtest_filter=-*7168*"
    "mla_attention_gpu_test --gtest_filter=MlaPlan.*:*MatchesCpuTwin/0:*MatchesCpuTwin/5:*MatchesCpuTwin/7:*MatchesCpuTwin/18"
    "moe_gpu_test --gtest_filter=*MoeRouterGpuTest.MatchesCpu/3:*MoeRouterGpuTest.MatchesCpu/5:*StoreF32*:*Tokens/MoePipelineGpuTest.MatchesCpu/1"
    "sampling_gpu_test --gtest_filter=*SameTokenAsCpuSampler/5:*SameTokenAsCpuSampler/6"
    "cuda_runner_test --gtest_filter=*ExpertLoadAndBadInput/0:*SamplingAndLogprobs*:Families/*ExpertLoadAndBadInput/*"
    "logprobs_gpu_test"
    "fp8_gemm_gpu_test --gtest_filter=*ActQuant*:*StoreF32*:*Fp8MoeGpuTest*/1"
    "dsa_gpu_test --gtest_filter=*prefill_short_and_long:*decode_batch:*TiesAndPadding*:*fixture_dims_f32"
    "gqa_attention_gpu_test --gtest_filter=*qwen2_fixture_prefill:*llama_fixture_decode"
  )
  for run in "${runs[@]}"; do
    bin=${run%% *}
    [[ -x $T/$bin ]] || { detail "$bin: not built"; continue; }
    (($(tleft) > 15)) || { detail "$bin: no time left"; continue; }
    out="$LOGS/sanitizer_$bin.log"
    local args=()
    [[ $run == *" "* ]] && read -r -a args <<<"${run#* }"  # the gtest filter (no spaces inside)
    timeout -k 5 "$(min "$(tleft 5)" 90)" \
      compute-sanitizer --tool memcheck --error-exitcode 3 "$T/$bin" "${args[@]}" >"$out" 2>&1
    local rc=$? summary ntests
    done_runs=$((done_runs + 1))
    summary=$(grep -m1 -o 'ERROR SUMMARY: [0-9]* error[s]*' "$out" || true)
    ntests=$(grep -m1 -o '\[==========\] [0-9]* tests\? from' "$out" | grep -o '[0-9]*' || echo 0)
    if ((rc == 0)) && [[ ${ntests:-0} != 0 ]]; then clean=$((clean + 1)); fi
    [[ $rc == 3 ]] && errors=$((errors + 1))
    detail "$bin ($ntests tests): ${summary:-no summary}, rc $rc$( ((rc == 124)) && echo ' (timed out)')$( [[ ${ntests:-0} == 0 ]] && echo ' (filter matched no test)')"
    grep -m3 -E 'Invalid|out of bounds|misaligned' "$out" | while IFS= read -r l; do detail "  ${l:0:200}"; done
  done
  if ((done_runs == 0)); then status skip "no test binary could run"
  elif ((errors)); then status fail "$errors of $done_runs test binaries with memcheck errors"
  elif ((clean < done_runs)); then status fail "$clean of $done_runs runs clean (see details)"
  else status pass "memcheck clean on $done_runs test binaries"; fi
  row "compute-sanitizer --tool memcheck (small cases of the kernel tests)" \
    "$clean of $done_runs runs clean, $errors with errors" "" ""
}

# ---- Running one part (`$SELF --part ID`, under timeout) -------------------------------------
if [[ "${1:-}" == "--part" ]]; then
  export GC_PART=$2
  # shellcheck source=/dev/null
  [[ -f $GC_WORK/deps.env ]] && . "$GC_WORK/deps.env"
  "part_$2"
  exit 0
fi

# ---- The run ----------------------------------------------------------------------------------
# (a function, so that bash has read all of it before it runs: editing the file mid-run is safe)
main() {
PARTS=${DSINFER_GPU_CHECK_PARTS:-build ctest kernels parallel e2e server sanitizer}
: >"$GC_WORK/rows.tsv"
: >"$GC_WORK/parts.tsv"
rm -f "$OUT"/{summary.txt,RESULTS.md,logs.tar.gz,kernels.json,e2e.json,serving.json,parallel.json}

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  # The GPU machine gets the tree without .git: the caller passes GC_COMMIT (git rev-parse --short HEAD).
  if [[ -n ${GC_COMMIT:-} ]]; then echo "commit: $GC_COMMIT"
  elif git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  else echo "commit: unknown (no .git here; pass GC_COMMIT)"; fi
  gpu=$(timeout 20 nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -4 | tr '\n' ';')
  echo "gpu: ${gpu:-none}"
  echo "gpus: $(gpu_count)"
  echo "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || /usr/local/cuda/bin/nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo none)"
  echo "host: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(nproc) cores, $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB RAM"}'), $(df -h /tmp 2>/dev/null | awk 'NR == 2 {print $4 " free in /tmp"}'), $(df -h /dev/shm 2>/dev/null | awk 'NR == 2 {print $4 " in /dev/shm"}')"
  echo "tools: $(g++ --version 2>/dev/null | head -1), $(cmake --version 2>/dev/null | head -1), ninja $(ninja --version 2>/dev/null), $(python3 --version 2>&1)"
  echo "budget: ${GC_BUDGET}s; device: $GC_DEVICE$([[ $GC_DEVICE == cpu ]] && echo ' (REHEARSAL on the CPU: no GPU figures)')"
} >"$GC_WORK/machine.txt"
timeout 20 nvidia-smi >"$LOGS/nvidia-smi.txt" 2>&1 || true
cat "$GC_WORK/machine.txt"
GC_GPUS=$(gpu_count)
export GC_GPUS

SETSID=$(command -v setsid >/dev/null && echo "setsid -w")
# run_part ID CAP MIN TITLE: runs part ID for at most CAP seconds (less if the budget is shorter),
# skips it when less than MIN seconds are left.
run_part() {
  local id=$1 cap=$2 min=$3 title=$4 left lim t0 rc dt st
  left=$(budget_left)
  # Parts that need the GPU say so at once where there is none (part 3-5 rehearse on a CPU).
  if ! have_gpu && { [[ " ctest kernels sanitizer " == *" $id "* ]] ||
    { [[ $GC_DEVICE == cuda ]] && [[ " parallel e2e server " == *" $id "* ]]; }; }; then
    printf '%s|%s|%s|%s|%s\n' "$id" "$title" "skip: no GPU (nvidia-smi lists none)" 0 0 >>"$GC_WORK/parts.tsv"
    echo "== $id: skipped, no GPU"
    return
  fi
  if ((left < min)); then
    printf '%s|%s|%s|%s|%s\n' "$id" "$title" "skip: budget spent (${left}s left, needs ${min}s)" 0 0 >>"$GC_WORK/parts.tsv"
    echo "== $id: skipped, budget"
    return
  fi
  # Leave the parts after this one their KEEP seconds, where that still leaves this one MIN.
  lim=$(min "$cap" $((left - ${KEEP[$id]:-0})))
  ((lim < min)) && lim=$(min "$min" "$left")
  echo "== $id ($title): up to ${lim}s"
  t0=$(date +%s)
  # In a session of its own: what the part leaves running (a server, a rank, a process under an
  # inner `timeout`, which has a process group of its own) is ended with it.
  GC_PART=$id GC_PART_END=$((t0 + lim)) $SETSID timeout -k 10 "$lim" bash "$SELF" --part "$id" \
    >"$LOGS/part_$id.log" 2>&1 &
  local pid=$!
  wait "$pid"
  rc=$?
  [[ -n $SETSID ]] && pkill -KILL -s "$pid" 2>/dev/null
  dt=$(($(date +%s) - t0))
  st=$(cat "$GC_WORK/status/$id" 2>/dev/null)
  if ((rc == 124 || rc == 137)); then
    st="fail: timed out at its ${lim}s limit${st:+ (it had said: $st)}"
  elif [[ -z $st ]]; then
    if ((rc == 0)); then st="pass"; else st="fail: exit $rc: $(tail -1 "$LOGS/part_$id.log" | cut -c1-200)"; fi
  fi
  printf '%s|%s|%s|%s|%s\n' "$id" "$title" "$st" "$dt" "$lim" >>"$GC_WORK/parts.tsv"
  echo "   $st (${dt}s)"
  # Models of part 3 never outlive it (they are 16-31 GB).
  rm -rf /dev/shm/dsinfer-gpu-check-* /tmp/dsinfer-gpu-check-models 2>/dev/null
}

# Caps (seconds) and the least time worth starting a part with. They add up to more than the
# budget on purpose: a part that ends early leaves its time to the next ones.
declare -gA CAP=([build]=270 [ctest]=100 [kernels]=75 [parallel]=60 [e2e]=260 [server]=80 [sanitizer]=70)
declare -gA MIN=([build]=60 [ctest]=20 [kernels]=20 [parallel]=20 [e2e]=90 [server]=40 [sanitizer]=20)
declare -gA KEEP=([e2e]=55)  # part 3 leaves part 4 its minute
declare -gA TITLE=([build]="1 build (CUDA sm_90a, server, loadgen)" [ctest]="1t ctest -L gpu"
  [kernels]="2 kernel benchmarks vs peers" [parallel]="5 tp 2, tp 2/ep 2 vs 1 rank; NCCL"
  [e2e]="3 end to end vs HF transformers" [server]="4 server (backend: cuda) under loadgen"
  [sanitizer]="6 compute-sanitizer memcheck")
for kv in ${DSINFER_GPU_CHECK_CAPS:-}; do CAP[${kv%%=*}]=${kv#*=}; done  # e.g. "build=3000" to try on a slow machine
for p in $PARTS; do
  [[ -n ${CAP[$p]:-} ]] || { echo "unknown part $p (known: ${!CAP[*]})"; continue; }
  run_part "$p" "${CAP[$p]}" "${MIN[$p]}" "${TITLE[$p]}"
done

# ---- Summary, RESULTS.md rows, logs -----------------------------------------------------------
GC_COMMAND="${GC_COMMAND:-DSINFER_GPU_CHECK_BUDGET=$GC_BUDGET bash scripts/gpu-check.sh}"
cp "$GC_RESULTS" "$GC_WORK/RESULTS.before.md" 2>/dev/null || true
RESULTS_ROWS=no
if [[ $GC_DEVICE == cuda ]] && have_gpu && [[ -s $GC_WORK/rows.tsv ]]; then RESULTS_ROWS=yes; fi
[[ -n ${GC_FORCE_RESULTS:-} ]] && RESULTS_ROWS=$GC_FORCE_RESULTS
py "$ROOT/bench/gpu_check_report.py" summary --work "$GC_WORK" --elapsed $(($(date +%s) - GC_START)) \
  --results "$GC_RESULTS" --append-results "$RESULTS_ROWS" --command "$GC_COMMAND" \
  >"$OUT/summary.txt" 2>"$LOGS/summary_report.log" || {
  # The report tool failed: a plain summary from the part lines.
  {
    cat "$GC_WORK/machine.txt"
    echo "(bench/gpu_check_report.py failed: $(tail -1 "$LOGS/summary_report.log"))"
    cat "$GC_WORK/parts.tsv"
    for f in "$GC_WORK"/details/*; do [[ -f $f ]] && { echo "-- $(basename "$f")"; cat "$f"; }; done
  } >"$OUT/summary.txt"
}
cp "$GC_RESULTS" "$OUT/RESULTS.md" 2>/dev/null || true
cp "$OUT/summary.txt" "$LOGS/summary.txt"
cp "$GC_WORK/rows.tsv" "$GC_WORK/parts.tsv" "$GC_WORK/machine.txt" "$LOGS/" 2>/dev/null
cp -r "$GC_WORK/details" "$LOGS/details" 2>/dev/null
# Every log in one tarball (under 16 MiB: the largest logs are cut to their last 2 MiB).
find "$LOGS" -type f -size +2M -exec sh -c 'tail -c 2M "$1" >"$1.tail" && mv "$1.tail" "$1"' _ {} \;
tar -C "$GC_WORK" -czf "$OUT/logs.tar.gz" logs 2>/dev/null
cat "$OUT/summary.txt"
ls -la "$OUT"
! grep -q '|fail' "$GC_WORK/parts.tsv"
}

main "$@"
