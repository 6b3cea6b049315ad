// The per-ISA GEMM entry points behind cpu::Linear (bf16), cpu::LinearFp8 and cpu::LinearFp4,
// which dispatch on ActiveCpuIsa() (isa.h). Internal to kernels/cpu.
#pragma once

#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_fp4.h"
#include "kernels/cpu/linear_fp8.h"

namespace dsinfer::cpu {

namespace avx2 {  // gemm_avx2.cc: compiled without AVX-512
void GemmBf16(const LinearParams& p, const ParallelFor& pfor);
void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor);
void LinearFp4(const Fp4LinearParams& p, const ParallelFor& pfor);
}  // namespace avx2

namespace avx512 {  // gemm_avx512.cc: AVX512-BF16 + VBMI (only where the compiler has them)
void GemmBf16(const LinearParams& p, const ParallelFor& pfor);
void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor);
void LinearFp4(const Fp4LinearParams& p, const ParallelFor& pfor);
// AMX-BF16 tiles (linear_amx.h; only where the compiler has AMX too): bf16 GEMMs at every m,
// FP8 / FP4 in bf16 runs (f32 runs as above).
void GemmBf16Amx(const LinearParams& p, const ParallelFor& pfor);
void LinearFp8Amx(const Fp8LinearParams& p, const ParallelFor& pfor);
void LinearFp4Amx(const Fp4LinearParams& p, const ParallelFor& pfor);
}  // namespace avx512

}  // namespace dsinfer::cpu
