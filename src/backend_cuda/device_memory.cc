#include "src/backend_cuda/device_memory.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"

namespace dsinfer::cuda_backend {

absl::Status CudaError(cudaError_t err, absl::string_view what) {
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(err), " (",
                                          cudaGetErrorString(err), ") in ", what));
}

absl::Status BlasError(cublasStatus_t st, absl::string_view what) {
  return absl::InternalError(absl::StrCat("cuBLAS error ", cublasGetStatusName(st), " (",
                                          cublasGetStatusString(st), ") in ", what));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

absl::Status DeviceBuffer::Allocate(size_t bytes) {
  if (ptr_) {
    cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  if (bytes == 0) return absl::OkStatus();
  const cudaError_t err = cudaMalloc(&ptr_, bytes);
  if (err != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();  // clear the sticky-free allocation error
    return absl::ResourceExhaustedError(
        absl::StrCat("cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorString(err)));
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

absl::Status PinnedBuffer::Allocate(size_t bytes) {
  if (ptr_) {
    cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  if (bytes == 0) return absl::OkStatus();
  const cudaError_t err = cudaMallocHost(&ptr_, bytes);
  if (err != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    return absl::ResourceExhaustedError(
        absl::StrCat("cudaMallocHost of ", bytes, " bytes failed: ", cudaGetErrorString(err)));
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

}  // namespace dsinfer::cuda_backend
