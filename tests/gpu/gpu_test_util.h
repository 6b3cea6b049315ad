// Helpers of the GPU tests: skipping without a device, device arrays, bf16 rounding, random
// data, a threaded ParallelFor for the CPU twins, and the error measure of the parity checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "src/core/numeric.h"

namespace dsinfer::gpu_test {

inline bool HasCudaDevice() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

#define SKIP_WITHOUT_CUDA()                                                               \
  do {                                                                                    \
    if (!::dsinfer::gpu_test::HasCudaDevice()) GTEST_SKIP() << "no CUDA device: skipped"; \
  } while (0)

#define CUDA_OK(expr)                                                                          \
  do {                                                                                         \
    const cudaError_t _cuda_ok_err = (expr);                                                   \
    ASSERT_EQ(_cuda_ok_err, cudaSuccess) << #expr << ": " << cudaGetErrorString(_cuda_ok_err); \
  } while (0)

// A device copy of a host vector (or an uninitialised array of n elements).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { Resize(n); }
  explicit DeviceArray(const std::vector<T>& host) {
    Resize(host.size());
    if (!host.empty()) {
      EXPECT_EQ(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);
  }
  void Resize(size_t n) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = n;
    if (n) {
      EXPECT_EQ(cudaMalloc(&ptr_, n * sizeof(T)), cudaSuccess);
      EXPECT_EQ(cudaMemset(ptr_, 0, n * sizeof(T)), cudaSuccess);
    }
  }
  std::vector<T> ToHost() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(h.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return h;
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

inline __nv_bfloat16 ToBf16(float f) {
  __nv_bfloat16_raw raw;
  raw.x = F32ToBf16(f);
  return __nv_bfloat16(raw);
}
inline float FromBf16(__nv_bfloat16 b) {
  const __nv_bfloat16_raw raw(b);
  return Bf16ToF32(raw.x);
}
inline std::vector<__nv_bfloat16> ToBf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = ToBf16(v[i]);
  return out;
}
inline std::vector<float> FromBf16(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FromBf16(v[i]);
  return out;
}

// Uniform in [-scale, scale], already rounded to bf16 (so CPU and GPU see the same values).
inline std::vector<float> RandomBf16Values(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = RoundToBf16(d(rng));
  return v;
}

// max |got - want| / max |want|
inline double MaxRelErr(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got[i] - want[i])));
    den = std::max(den, static_cast<double>(std::fabs(want[i])));
  }
  if (got.size() != want.size()) return INFINITY;
  return den > 0 ? num / den : num;
}

// A ParallelFor over std::threads for the (slow) CPU twins.
inline void ThreadedFor(int64_t n, const cpu::RangeBody& body) {
  const int64_t threads = std::min<int64_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  if (threads <= 1) {
    if (n > 0) body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t b = n * t / threads, e = n * (t + 1) / threads;
    pool.emplace_back([&body, b, e] {
      if (e > b) body(b, e);
    });
  }
  for (auto& th : pool) th.join();
}

inline int NumSms() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  return std::max(sms, 1);
}

}  // namespace dsinfer::gpu_test
