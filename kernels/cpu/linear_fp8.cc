// LinearFp8: the ISA dispatch (the kernels: linear_fp8_impl.h, built per ISA by gemm_*.cc).
#include "kernels/cpu/linear_fp8.h"

#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/isa.h"

namespace dsinfer::cpu {

void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor) {
#if defined(DSINFER_HAVE_AVX512_KERNELS)
  const CpuIsa isa = ActiveCpuIsa();
#if defined(DSINFER_HAVE_AMX_KERNELS)
  if (isa == CpuIsa::kAmxBf16) {
    avx512::LinearFp8Amx(p, pfor);
    return;
  }
#endif
  if (isa == CpuIsa::kAvx512Bf16) {
    avx512::LinearFp8(p, pfor);
    return;
  }
#endif
  avx2::LinearFp8(p, pfor);
}

}  // namespace dsinfer::cpu
