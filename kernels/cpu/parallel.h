// How CPU kernels split work: the caller passes a parallel-for (the engine's thread pool);
// kernels themselves own no threads and include nothing from src/.
#pragma once

#include <cstdint>
#include <functional>

namespace dsinfer::cpu {

// body(begin, end) over disjoint sub-ranges covering [0, n); returns when all are done.
using RangeBody = std::function<void(int64_t, int64_t)>;
using ParallelFor = std::function<void(int64_t, const RangeBody&)>;

inline void SerialFor(int64_t n, const RangeBody& body) {
  if (n > 0) body(0, n);
}

}  // namespace dsinfer::cpu
