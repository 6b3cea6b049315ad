// The avx512 build of the bf16, FP8 and FP4 GEMM kernels (see gemm_isa.h; flags in CMakeLists.txt).
#define DSINFER_CPU_ISA avx512
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/linear_bf16_impl.h"
#include "kernels/cpu/linear_fp4_impl.h"
#include "kernels/cpu/linear_fp8_impl.h"

namespace dsinfer::cpu::avx512 {

void GemmBf16(const LinearParams& p, const ParallelFor& pfor) { GemmBf16Impl(p, pfor); }
void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor) { LinearFp8Impl(p, pfor); }
void LinearFp4(const Fp4LinearParams& p, const ParallelFor& pfor) { LinearFp4Impl(p, pfor); }
#if defined(DSINFER_AMX_TILES)
void GemmBf16Amx(const LinearParams& p, const ParallelFor& pfor) { GemmBf16AmxImpl(p, pfor); }
void LinearFp8Amx(const Fp8LinearParams& p, const ParallelFor& pfor) { LinearFp8AmxImpl(p, pfor); }
void LinearFp4Amx(const Fp4LinearParams& p, const ParallelFor& pfor) { LinearFp4AmxImpl(p, pfor); }
#elif defined(DSINFER_HAVE_AMX_KERNELS)
#error "DSINFER_HAVE_AMX_KERNELS without AMX in this translation unit's flags"
#endif

}  // namespace dsinfer::cpu::avx512
