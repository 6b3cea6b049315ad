// Owning device allocations and the CUDA/cuBLAS -> absl::Status border of the CUDA backend.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace dsinfer::cuda_backend {

absl::Status CudaError(cudaError_t err, absl::string_view what);
absl::Status BlasError(cublasStatus_t st, absl::string_view what);

#define DSINFER_CUDA_RETURN_IF_ERROR(expr)                                 \
  do {                                                                     \
    const cudaError_t _dsinfer_cuda_err = (expr);                          \
    if (_dsinfer_cuda_err != cudaSuccess)                                  \
      return ::dsinfer::cuda_backend::CudaError(_dsinfer_cuda_err, #expr); \
  } while (0)

#define DSINFER_BLAS_RETURN_IF_ERROR(expr)                                \
  do {                                                                    \
    const cublasStatus_t _dsinfer_blas_st = (expr);                       \
    if (_dsinfer_blas_st != CUBLAS_STATUS_SUCCESS)                        \
      return ::dsinfer::cuda_backend::BlasError(_dsinfer_blas_st, #expr); \
  } while (0)

// A cudaMalloc'd block, freed on destruction. Allocation happens at load time only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer();

  absl::Status Allocate(size_t bytes);
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  bool empty() const { return ptr_ == nullptr; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory (fast, asynchronous copies), freed on destruction.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer();

  absl::Status Allocate(size_t bytes);
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace dsinfer::cuda_backend
