// LinearFp4: the ISA dispatch (the kernels: linear_fp4_impl.h, built per ISA by gemm_*.cc) and
// the scalar reference.
#include "kernels/cpu/linear_fp4.h"

#include <cstring>

#include "kernels/cpu/fp4.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/isa.h"

namespace dsinfer::cpu {

void LinearFp4(const Fp4LinearParams& p, const ParallelFor& pfor) {
#if defined(DSINFER_HAVE_AVX512_KERNELS)
  const CpuIsa isa = ActiveCpuIsa();
#if defined(DSINFER_HAVE_AMX_KERNELS)
  if (isa == CpuIsa::kAmxBf16) {
    avx512::LinearFp4Amx(p, pfor);
    return;
  }
#endif
  if (isa == CpuIsa::kAvx512Bf16) {
    avx512::LinearFp4(p, pfor);
    return;
  }
#endif
  avx2::LinearFp4(p, pfor);
}

namespace {
float RoundBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) <= 0x7f800000u) u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

void LinearFp4Ref(const Fp4LinearParams& p) {
  const int64_t blocks = (p.k + kFp4BlockK - 1) / kFp4BlockK;
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldw = p.ldw ? p.ldw : p.k / 2;
  const int64_t lds = p.ld_scale ? p.ld_scale : blocks, ldy = p.ldy ? p.ldy : p.n;
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t o = 0; o < p.n; ++o) {
      double sum = 0;
      for (int64_t j = 0; j < p.k; ++j) {
        const float x = p.round_bf16 ? RoundBf16(p.x[i * ldx + j]) : p.x[i * ldx + j];
        const float w = E2M1ToF32(Fp4Code(p.w + o * ldw, j)) * E8M0ToF32(p.scale[o * lds + j / kFp4BlockK]);
        sum += static_cast<double>(x) * w;
      }
      float* y = p.y + i * ldy + o;
      *y = p.accumulate ? *y + static_cast<float>(sum) : static_cast<float>(sum);
    }
}

}  // namespace dsinfer::cpu
