// Shared pieces of the CUDA benchmarks: event timing, the device's copy bandwidth (measured
// once per run), and skipping where no GPU is present.
#pragma once

#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <functional>

namespace dsinfer::cuda_bench {

inline bool HasGpu() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

// Milliseconds of one run of fn, the median of `reps` runs timed with events after 2 warm-ups.
double TimeMs(const std::function<void()>& fn, int reps = 10);

// Device-to-device cudaMemcpy bandwidth in GB/s (bytes read + written per second), 1 GiB copies.
double CopyBandwidthGBps();

}  // namespace dsinfer::cuda_bench
