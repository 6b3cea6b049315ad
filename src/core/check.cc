#include <cstdio>
#include <cstdlib>

#include "src/core/status_macros.h"

namespace dsinfer::internal {
void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "dsinfer: internal invariant failed: %s (%s:%d)\n", cond, file, line);
  std::abort();
}
}  // namespace dsinfer::internal
