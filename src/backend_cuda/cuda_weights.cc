// Weight storage of the CUDA backend, uploaded once at load: bf16 matrices (FP8 checkpoints
// dequantised with their block scales, exactly as the CPU bf16 backend reads them), f32 norms,
// router and correction bias; kv_b in bf16 (f32 copy added in Reserve for the generic attention
// kernel); routed experts stacked per layer, gate/up interleaved for the grouped GEMM.
#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/moe.h"
#include "src/backend_cuda/cuda_backend.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {
namespace {

absl::Status Upload(DeviceBuffer* dst, const void* src, size_t bytes, size_t offset = 0) {
  DSINFER_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(dst->as<char>() + offset, src, bytes, cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status Alloc(DeviceBuffer* b, size_t bytes, const std::string& key) {
  if (absl::Status st = b->Allocate(bytes); !st.ok())
    return absl::ResourceExhaustedError(
        absl::StrCat(bytes, " bytes do not fit on the GPU: ", st.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BackendWeight>> CudaOps::LoadWeight(const WeightDesc& d,
                                                                   WeightReader& reader) {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  auto w = std::make_unique<CudaWeight>();
  w->role = d.role;
  w->rows = d.rows;
  w->cols = d.cols;
  if (d.role == WeightRole::kVector || d.role == WeightRole::kLinearF32) {
    std::vector<float> host(d.rows * d.cols);
    int64_t row0 = 0;
    for (const TensorPart& p : d.parts) {
      RETURN_IF_ERROR(reader.ReadF32(p, host.data() + row0 * d.cols));
      row0 += p.rows();
    }
    w->f32 = true;
    RETURN_IF_ERROR(Alloc(&w->data, host.size() * 4, d.key));
    RETURN_IF_ERROR(Upload(&w->data, host.data(), host.size() * 4));
    w->bytes = static_cast<int64_t>(host.size() * 4);
    return w;
  }
  if (d.role != WeightRole::kExperts) {  // kLinear, kEmbedding, kMlaKvB: bf16
    std::vector<uint16_t> host(d.rows * d.cols);
    int64_t row0 = 0;
    for (const TensorPart& p : d.parts) {
      RETURN_IF_ERROR(reader.ReadBf16(p, host.data() + row0 * d.cols));
      row0 += p.rows();
    }
    RETURN_IF_ERROR(Alloc(&w->data, host.size() * 2, d.key));
    RETURN_IF_ERROR(Upload(&w->data, host.data(), host.size() * 2));
    w->bytes = static_cast<int64_t>(host.size() * 2);
    if (d.role == WeightRole::kMlaKvB) kv_b_weights_.push_back(w.get());
    return w;
  }
  // Routed experts: [E_local, 2I, D] gate/up interleaved per 64 rows, [E_local, D, I].
  const int64_t E = d.local_experts, I = d.rows, D = d.cols;
  w->first_expert = d.first_expert;
  w->local_experts = E;
  w->total_experts = d.total_experts;
  RETURN_IF_ERROR(Alloc(&w->data, static_cast<size_t>(E * 2 * I * D) * 2, d.key));
  RETURN_IF_ERROR(Alloc(&w->data2, static_cast<size_t>(E * D * I) * 2, d.key));
  std::vector<uint16_t> gate(I * D), up(I * D), mixed(2 * I * D), down(D * I);
  for (int64_t e = 0; e < E; ++e) {
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e], gate.data()));
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e + 1], up.data()));
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e + 2], down.data()));
    cuda::InterleaveGateUp(gate.data(), up.data(), I, D, mixed.data());
    RETURN_IF_ERROR(Upload(&w->data, mixed.data(), mixed.size() * 2, e * mixed.size() * 2));
    RETURN_IF_ERROR(Upload(&w->data2, down.data(), down.size() * 2, e * down.size() * 2));
  }
  w->bytes = static_cast<int64_t>(w->data.bytes() + w->data2.bytes());
  return w;
}

}  // namespace dsinfer::cuda_backend
