// Entry point of cuda_kernels_bench, and the shared timing helpers.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "bench/cuda_bench_util.h"

namespace dsinfer::cuda_bench {

double TimeMs(const std::function<void()>& fn, int reps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 2; ++i) fn();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a);
    fn();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double CopyBandwidthGBps() {
  static double gbps = [] {
    const size_t bytes = size_t{1} << 30;
    void *src = nullptr, *dst = nullptr;
    if (cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) {
      cudaGetLastError();
      return 0.0;
    }
    cudaMemset(src, 1, bytes);
    const double ms =
        TimeMs([&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice); }, 10);
    cudaFree(src);
    cudaFree(dst);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;
  }();
  return gbps;
}

}  // namespace dsinfer::cuda_bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (dsinfer::cuda_bench::HasGpu()) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    benchmark::AddCustomContext("gpu", prop.name);
    benchmark::AddCustomContext("sms", std::to_string(prop.multiProcessorCount));
    char bw[32];
    std::snprintf(bw, sizeof bw, "%.1f", dsinfer::cuda_bench::CopyBandwidthGBps());
    benchmark::AddCustomContext("d2d_copy_GBps", bw);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
