#include "kernels/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace dsinfer::cpu {
namespace {

CpuIsa Initial() {
  CpuIsa isa = CpuIsaAvailable(CpuIsa::kAvx512Bf16) ? CpuIsa::kAvx512Bf16 : CpuIsa::kAvx2;
  if (const char* env = std::getenv("DSINFER_CPU_ISA")) {
    if (std::strcmp(env, "avx2") == 0) isa = CpuIsa::kAvx2;
  }
  return isa;
}

std::atomic<int>& Active() {
  static std::atomic<int> active{static_cast<int>(Initial())};
  return active;
}

}  // namespace

const char* CpuIsaName(CpuIsa isa) { return isa == CpuIsa::kAvx2 ? "avx2" : "avx512bf16"; }

bool CpuIsaAvailable(CpuIsa isa) {
  if (isa == CpuIsa::kAvx2) return true;
#if defined(DSINFER_HAVE_AVX512_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16") &&
         __builtin_cpu_supports("avx512vbmi");
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
