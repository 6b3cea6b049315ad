#include "kernels/cpu/blas_core.h"

#include <dlfcn.h>
#include <strings.h>

#include <cstdlib>
#include <mutex>

extern "C" char* openblas_get_corename(void);

namespace dsinfer::cpu {
namespace {

// OpenBLAS's x86 core names of CPUs without AVX2 + FMA (its `corename` table), in lower case.
bool PreAvx2Core(const std::string& core) {
  static const char* const kOld[] = {
      "unknown",  "katmai",    "coppermine", "northwood", "prescott",  "banias",
      "atom",     "core2",     "penryn",     "dunnington", "nehalem",  "athlon",
      "opteron",  "opteron_sse3", "barcelona", "nano",     "sandybridge", "bobcat",
      "bulldozer", "piledriver", "steamroller"};
  for (const char* o : kOld) {
    if (strcasecmp(core.c_str(), o) == 0) return true;
  }
  return false;
}

std::string CoreName() {
  const char* n = openblas_get_corename();
  return n != nullptr ? std::string(n) : std::string();
}

}  // namespace

std::string BetterBlasCore(const std::string& current, bool avx512, bool avx2_fma) {
  if (!PreAvx2Core(current)) return "";
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return "";
}

const BlasCore& EnsureBlasCore() {
  static BlasCore core;
  static std::once_flag once;
  std::call_once(once, [] {
    core.detected = core.active = CoreName();
    if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the operator decided
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const std::string want = BetterBlasCore(core.detected, avx512, avx2);
    if (want.empty()) return;
    // DYNAMIC_ARCH builds export their selection entry points; others have nothing to switch.
    using Fn = void (*)();
    auto quit = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
    auto init = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
    if (quit == nullptr || init == nullptr) return;
    setenv("OPENBLAS_CORETYPE", want.c_str(), 0);
    quit();
    init();  // reads OPENBLAS_CORETYPE, sets the kernel table and its blocking parameters
    unsetenv("OPENBLAS_CORETYPE");
    core.active = CoreName();
  });
  return core;
}

}  // namespace dsinfer::cpu
