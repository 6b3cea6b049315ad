// OpenBLAS core selection on CPUs it does not recognise.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH: at load it picks its kernels from the CPU's
// family/model numbers. A CPU newer than the library (or a VM that reports a generic
// "Intel Xeon Processor" with a new model number) falls back to the Prescott (SSE3) kernels:
// on a 2-core AVX-512 VM that made every f32 GEMM ~4x slower. EnsureBlasCore() re-runs that
// selection once, before the first BLAS call, with the best core name the CPU's *features*
// allow (SkylakeX for AVX-512 F/BW/DQ/VL, Haswell for AVX2 + FMA), but only when OpenBLAS chose a
// pre-AVX2 core and the operator did not set OPENBLAS_CORETYPE. Where the library has no
// run-time selection (not a DYNAMIC_ARCH build) nothing changes.
//
// Invariant: the switch happens at most once per process and before any GEMM that could run
// concurrently with it (Linear and MatMulF32 call it first; std::call_once orders the rest).
#pragma once

#include <string>

namespace dsinfer::cpu {

struct BlasCore {
  std::string detected;  // the core OpenBLAS chose at load ("" when it cannot say)
  std::string active;    // the core in use after EnsureBlasCore()
};

// Idempotent and thread-safe; cheap after the first call.
const BlasCore& EnsureBlasCore();

// The core name to force for CPU features (no OpenBLAS involved; "" for none); exposed for tests.
// `current` is the core OpenBLAS chose; only pre-AVX2 cores are replaced.
std::string BetterBlasCore(const std::string& current, bool avx512, bool avx2_fma);

}  // namespace dsinfer::cpu
