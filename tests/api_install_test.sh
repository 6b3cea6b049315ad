#!/usr/bin/env bash
# The installed package as an application sees it: `cmake --install` into a temporary prefix,
# examples/embed configured and built as a separate CMake project with find_package(dsinfer)
# against that prefix, then run on the bundled tiny model (tokens streamed, cancel honoured).
# Also: the headers include nothing of src/, and libdsinfer exports nothing of dsinfer but the
# API. Usage: api_install_test.sh CMAKE BUILD_DIR SOURCE_DIR MAKE_TINY_MODEL WORK_DIR GENERATOR
set -euo pipefail
cmake=$1 build=$2 src=$3 make_tiny=$4 work=$5 generator=$6
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }
for f in include/dsinfer/dsinfer.h include/dsinfer/model.h include/dsinfer/types.h bin/dsinfer; do
  [[ -f $prefix/$f ]] || fail "$f was not installed"
done
lib=$(find "$prefix" -name 'libdsinfer.so' | head -1)
[[ -n $lib ]] || fail "libdsinfer.so was not installed"
[[ -n $(find "$prefix" -name dsinferConfig.cmake) ]] || fail "dsinferConfig.cmake was not installed"
[[ -n $(find "$prefix" -name dsinferConfigVersion.cmake) ]] || fail "no version file"

# The public headers stand alone: only the standard library, absl and each other.
if grep -n '#include "' "$prefix"/include/dsinfer/*.h | grep -v -e '"dsinfer/' -e '"absl/'; then
  fail "a public header includes something outside include/ and absl"
fi
# Only the API is exported (std:: template instances the API code uses may be, as weak symbols).
exported=$(nm -DC --defined-only "$lib")
grep -q 'dsinfer::api::Model::Load' <<<"$exported" || fail "Model::Load is not exported"
if leaked=$(sed 's/dsinfer::api:://g' <<<"$exported" | grep 'dsinfer::'); then
  echo "$leaked" | head -20
  fail "libdsinfer exports internal symbols"
fi

"$cmake" -S "$src/examples/embed" -B "$work/example" -G "$generator" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" ||
  { cat "$work/configure.log"; fail "configuring examples/embed with find_package(dsinfer)"; }
"$cmake" --build "$work/example" -j 2 >"$work/build.log" ||
  { cat "$work/build.log"; fail "building examples/embed"; }
example=$work/example/embed_example
# It runs against the installed library, not the build tree's.
resolved=$(ldd "$example" | awk '/libdsinfer/ {print $3}')
[[ $resolved == "$prefix"/* ]] || fail "embed_example uses libdsinfer at '$resolved', not in $prefix"

"$make_tiny" --out "$work/tiny-v3" >/dev/null
rc=0
out=$("$example" "$work/tiny-v3" --threads 2) || rc=$?
[[ $rc == 0 ]] || { echo "$out"; fail "embed_example exited $rc"; }
echo "$out"
grep -q '^streamed 16 tokens in [1-9][0-9]* deltas' <<<"$out" || fail "tokens were not streamed"
grep -q '^second request: [0-9]* of 2000 tokens, finish cancelled$' <<<"$out" ||
  fail "the cancel was not honoured"
grep -q '^embed example: ok$' <<<"$out" || fail "embed_example did not report ok"
echo "api_install_example: ok"
