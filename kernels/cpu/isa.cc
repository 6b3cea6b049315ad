#include "kernels/cpu/isa.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(DSINFER_HAVE_AMX_KERNELS)
#include <cpuid.h>
#endif

namespace dsinfer::cpu {
namespace {

CpuIsa Best() {
  if (CpuIsaAvailable(CpuIsa::kAmxBf16)) return CpuIsa::kAmxBf16;
  if (CpuIsaAvailable(CpuIsa::kAvx512Bf16)) return CpuIsa::kAvx512Bf16;
  return CpuIsa::kAvx2;
}

CpuIsa Initial() {
  if (const char* env = std::getenv("DSINFER_CPU_ISA")) {
    if (std::strcmp(env, "avx2") == 0) return CpuIsa::kAvx2;
    if (std::strcmp(env, "avx512") == 0 && CpuIsaAvailable(CpuIsa::kAvx512Bf16))
      return CpuIsa::kAvx512Bf16;
  }
  return Best();
}

std::atomic<int>& Active() {
  static std::atomic<int> active{static_cast<int>(Initial())};
  return active;
}

#if defined(DSINFER_HAVE_AMX_KERNELS)
// CPUID.(7, 0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE; then Linux's per-process permission for
// the tile data state (Documentation/arch/x86/xstate.rst): granted once, it holds for every
// thread of the process, those already running included, so the pool needs nothing more.
// Without it the first tile instruction would raise SIGILL.
bool AmxPermitted() {
  static const bool permitted = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 22) & 1u) || !((d >> 24) & 1u)) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return permitted;
}
#endif

}  // namespace

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512Bf16: return "avx512bf16";
    case CpuIsa::kAmxBf16: return "amxbf16";
  }
  return "?";
}

bool CpuIsaAvailable(CpuIsa isa) {
  if (isa == CpuIsa::kAvx2) return true;
#if defined(DSINFER_HAVE_AVX512_KERNELS)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512bf16") &&
                      __builtin_cpu_supports("avx512vbmi");
  if (isa == CpuIsa::kAvx512Bf16) return avx512;
#if defined(DSINFER_HAVE_AMX_KERNELS)
  return avx512 && AmxPermitted();
#else
  return false;
#endif
#else
  return false;
#endif
}

CpuIsa ActiveCpuIsa() { return static_cast<CpuIsa>(Active().load(std::memory_order_relaxed)); }

bool SetActiveCpuIsa(CpuIsa isa) {
  if (!CpuIsaAvailable(isa)) return false;
  Active().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace dsinfer::cpu
