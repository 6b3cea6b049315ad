// Which instruction set the CPU GEMM kernels run (cpu::Linear bf16, cpu::LinearFp8, LinearFp4):
// chosen at run time, so that one build carries all of them and tests run each.
//   kAmxBf16:   AMX-BF16 tiles (linear_amx.h) for bf16 GEMMs at every m, on top of kAvx512Bf16
//               (f32 runs of the FP8 / FP4 GEMMs stay there), when the CPU, the compiler and
//               the kernel (arch_prctl XTILEDATA permission) allow;
//   kAvx512Bf16: AVX512-BF16 dot products (vdpbf16ps) and AVX512-VBMI FP8 decode, when the CPU
//                and the compiler have them;
//   kAvx2:       AVX2 + FMA (the fallback; its code is compiled without AVX-512).
// They add the products of a dot product in different orders (documented in linear_tile.h and
// linear_amx.h), so a run's results depend on its ISA but never on what a row is batched with.
// DSINFER_CPU_ISA=avx2, avx512 or amx selects one at start-up; an unavailable choice falls back
// to the best available one.
#pragma once

namespace dsinfer::cpu {

enum class CpuIsa { kAvx2, kAvx512Bf16, kAmxBf16 };

const char* CpuIsaName(CpuIsa isa);
// Compiled into this build and supported by this CPU (for kAmxBf16: and permitted by the OS,
// which the first call asks for, once per process).
bool CpuIsaAvailable(CpuIsa isa);
// The ISA the kernels use now: DSINFER_CPU_ISA if set and available, else the best available.
CpuIsa ActiveCpuIsa();
// Tests and benchmarks: switch the kernels' ISA (false, and no change, if not available).
bool SetActiveCpuIsa(CpuIsa isa);

}  // namespace dsinfer::cpu
