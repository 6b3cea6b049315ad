// Which instruction set the CPU GEMM kernels run (cpu::Linear bf16, cpu::LinearFp8): chosen at
// run time, so that one build carries both and tests run both.
//   kAvx512Bf16: AVX512-BF16 dot products (vdpbf16ps) and AVX512-VBMI FP8 decode, when the CPU
//                and the compiler have them;
//   kAvx2:       AVX2 + FMA (the fallback; its code is compiled without AVX-512).
// The two add the products of a dot product in different orders (documented in linear_tile.h),
// so a run's results depend on its ISA but never on what a row is batched with.
// DSINFER_CPU_ISA=avx2 (or avx512) selects one at start-up; an unavailable choice falls back to
// the best available one.
#pragma once

namespace dsinfer::cpu {

enum class CpuIsa { kAvx2, kAvx512Bf16 };

const char* CpuIsaName(CpuIsa isa);
// Compiled into this build and supported by this CPU.
bool CpuIsaAvailable(CpuIsa isa);
// The ISA the kernels use now: DSINFER_CPU_ISA if set and available, else the best available.
CpuIsa ActiveCpuIsa();
// Tests and benchmarks: switch the kernels' ISA (false, and no change, if not available).
bool SetActiveCpuIsa(CpuIsa isa);

}  // namespace dsinfer::cpu
