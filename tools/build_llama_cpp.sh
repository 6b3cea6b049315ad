#!/usr/bin/env bash
# Build llama.cpp (CPU) as dsinfer's CPU speed peer and convert the bench model to GGUF bf16.
#
# Idempotent: every step is skipped when its output already exists.
#   1. pip download the llama-cpp-python sdist (it vendors llama.cpp with its git objects)
#   2. `git archive HEAD` of the vendored llama.cpp module into $PEERS/llama.cpp
#   3. patch src/models/deepseek2.cpp so q_lora_rank is optional (V2-Lite-shaped model with fewer
#      than 26/27 layers; no compute change). Applied here, never committed.
#   4. CMake CPU build (GGML_NATIVE, no curl) of llama-bench, llama-batched-bench, llama-simple
#   5. tools/make_bench_model.py if the HF bench model is missing
#   6. convert_hf_to_gguf.py --outtype bf16  ->  $PEERS/v2lite-4l-bf16.gguf
#
# Usage: tools/build_llama_cpp.sh [--no-convert]
# Env:   PEERS (default <repo>/.peers), JOBS (default nproc), NICE (default 5),
#        LLAMA_CPP_PYTHON_VERSION (default 0.3.36), MODEL_DIR, GGUF
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS:-$REPO/.peers}"
VER="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
JOBS="${JOBS:-$(nproc)}"
NICE="${NICE:-5}"
MODEL_DIR="${MODEL_DIR:-$PEERS/v2lite-4l}"
GGUF="${GGUF:-$PEERS/v2lite-4l-bf16.gguf}"
SRC="$PEERS/src"
LLAMA="$PEERS/llama.cpp"
BUILD="$LLAMA/build"
CONVERT=1
[[ "${1:-}" == "--no-convert" ]] && CONVERT=0

log() { echo "[build_llama_cpp $(date +%T)] $*"; }
mkdir -p "$PEERS" "$SRC"

# 1. sdist
SDIST="$SRC/llama_cpp_python-$VER.tar.gz"
if [[ ! -f "$SDIST" ]]; then
  log "downloading llama-cpp-python==$VER sdist"
  # --no-binary for this package only: with :all: pip builds every build dependency (setuptools,
  # scikit-build-core, cmake, ...) from source just to prepare the sdist's metadata.
  python3 -m pip download --no-binary llama-cpp-python --no-deps "llama-cpp-python==$VER" -d "$SRC"
fi
SDIR="$SRC/llama_cpp_python-$VER"
MODGIT="$SDIR/.git/modules/vendor/llama.cpp"
if [[ ! -d "$MODGIT" ]]; then
  log "extracting sdist"
  tar xzf "$SDIST" -C "$SRC"
fi

# 2. source tree from the vendored module's HEAD
if [[ ! -f "$LLAMA/CMakeLists.txt" ]]; then
  log "git archive HEAD of vendored llama.cpp ($(git --git-dir="$MODGIT" rev-parse --short HEAD))"
  mkdir -p "$LLAMA"
  git --git-dir="$MODGIT" archive HEAD | tar x -C "$LLAMA"
  git --git-dir="$MODGIT" rev-parse HEAD > "$LLAMA/.commit"
fi

# 3. q_lora_rank optional (idempotent: only the unpatched call matches)
DS2="$LLAMA/src/models/deepseek2.cpp"
if grep -q 'get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q);' "$DS2"; then
  log "patching $DS2 (q_lora_rank optional)"
  sed -i 's/get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q);/get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q, false);/' "$DS2"
fi
grep -q 'get_key(LLM_KV_ATTENTION_Q_LORA_RANK, hparams.n_lora_q, false);' "$DS2" \
  || { echo "patch of $DS2 failed (source changed?)" >&2; exit 1; }

# 4. build
TARGETS=(llama-bench llama-batched-bench llama-simple)
need_build=0
for t in "${TARGETS[@]}"; do [[ -x "$BUILD/bin/$t" ]] || need_build=1; done
# rebuild if the patch is newer than the binaries
[[ -x "$BUILD/bin/llama-bench" && "$DS2" -nt "$BUILD/bin/llama-bench" ]] && need_build=1
if (( need_build )); then
  if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    log "cmake configure"
    cmake -S "$LLAMA" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_COMMON=ON
  fi
  log "building ${TARGETS[*]} with $JOBS jobs (nice -n $NICE)"
  t0=$SECONDS
  nice -n "$NICE" cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"
  log "build took $((SECONDS - t0)) s"
else
  log "llama.cpp already built in $BUILD"
fi

(( CONVERT )) || exit 0

# 5. bench model
if [[ ! -f "$MODEL_DIR/model.safetensors.index.json" ]]; then
  log "bench model missing: generating $MODEL_DIR"
  python3 "$REPO/tools/make_bench_model.py" --out "$MODEL_DIR"
fi

# 6. convert (uses the vendored gguf-py; redo if the model is newer than the GGUF)
if [[ ! -f "$GGUF" || "$MODEL_DIR/model.safetensors.index.json" -nt "$GGUF" ]]; then
  log "converting $MODEL_DIR -> $GGUF (bf16)"
  t0=$SECONDS
  # The bench model's tokenizer (V3's cut to 100000 ids, see make_bench_model.py) has no known
  # pre-tokenizer hash, so the converter is run through a wrapper that falls back to
  # "deepseek-v3" (its pre-tokenizer) instead of raising; weights and hparams are untouched.
  LLAMA="$LLAMA" nice -n "$NICE" python3 "$(dirname "${BASH_SOURCE[0]}")/convert_gguf_wrapper.py" deepseek-v3 "$MODEL_DIR" --outtype bf16 --outfile "$GGUF.tmp"
  mv "$GGUF.tmp" "$GGUF"
  log "conversion took $((SECONDS - t0)) s"
else
  log "GGUF up to date: $GGUF"
fi
ls -l "$GGUF"
