// Weight storage of the CUDA backend, uploaded once at load: bf16 matrices (FP8 checkpoints
// dequantised with their block scales, exactly as the CPU bf16 backend reads them), f32 norms,
// router and correction bias; kv_b in bf16 (f32 copy added in Reserve for the generic attention
// kernel); routed experts stacked per layer, gate/up interleaved for the grouped GEMM.
#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/fp8_gemm.h"
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

absl::StatusOr<bool> CudaOps::LoadFp8(const WeightDesc& d, WeightReader& reader, CudaWeight* w) {
  if (!opts_.keep_fp8 || (d.role != WeightRole::kLinear && d.role != WeightRole::kExperts))
    return false;
  for (const TensorPart& p : d.parts)
    if (!reader.IsFp8(p)) return false;
  // The GEMMs take k % 16 == 0 (16-byte rows of codes) on an sm_89+ GPU.
  if (d.cols % 16 != 0 || (d.role == WeightRole::kExperts && d.rows % 16 != 0) ||
      !cuda::Fp8GemmSupported()) {
    cudaGetLastError();
    return false;
  }
  if (d.role == WeightRole::kLinear) {
    std::vector<WeightStore::Fp8Slice> parts;
    for (const TensorPart& p : d.parts) {
      auto s = reader.ReadFp8(p);
      if (!s.ok()) {
        if (s.status().code() == absl::StatusCode::kFailedPrecondition) return false;
        return s.status();
      }
      if (s->block_n != cuda::kFp8Block || s->block_k != cuda::kFp8Block) return false;
      parts.push_back(std::move(*s));
    }
    int64_t row0 = 0;
    for (WeightStore::Fp8Slice& s : parts) {
      Fp8Part part{.row0 = row0, .rows = s.rows};
      RETURN_IF_ERROR(Alloc(&part.codes, s.codes.size(), d.key));
      RETURN_IF_ERROR(Upload(&part.codes, s.codes.data(), s.codes.size()));
      RETURN_IF_ERROR(Alloc(&part.scales, s.scale_inv.size() * 4, d.key));
      RETURN_IF_ERROR(Upload(&part.scales, s.scale_inv.data(), s.scale_inv.size() * 4));
      w->bytes += static_cast<int64_t>(s.codes.size() + s.scale_inv.size() * 4);
      row0 += s.rows;
      w->fp8.push_back(std::move(part));
    }
    w->fp8_bytes = w->bytes;
    fp8_max_k_ = std::max(fp8_max_k_, d.cols);
    return true;
  }
  // Experts: gate/up codes interleaved with their scales (InterleaveGateUpFp8), down as stored.
  const int64_t E = d.local_experts, I = d.rows, D = d.cols;
  const int64_t sg = 2 * ((I + 63) / 64) * ((D + 127) / 128);
  const int64_t sd = ((D + 127) / 128) * ((I + 127) / 128);
  std::vector<WeightStore::Fp8Slice> gate, up, down;
  for (int64_t e = 0; e < E; ++e) {
    for (int k = 0; k < 3; ++k) {
      auto s = reader.ReadFp8(d.parts[3 * e + k]);
      if (!s.ok()) {
        if (s.status().code() == absl::StatusCode::kFailedPrecondition) return false;
        return s.status();
      }
      if (s->block_n != cuda::kFp8Block || s->block_k != cuda::kFp8Block) return false;
      (k == 0 ? gate : k == 1 ? up : down).push_back(std::move(*s));
    }
    if (e == 0) {  // allocate once the first expert's parts read fine
      RETURN_IF_ERROR(Alloc(&w->data, static_cast<size_t>(E * 2 * I * D), d.key));
      RETURN_IF_ERROR(Alloc(&w->data2, static_cast<size_t>(E * D * I), d.key));
      RETURN_IF_ERROR(Alloc(&w->scale_gu, static_cast<size_t>(E * sg) * 4, d.key));
      RETURN_IF_ERROR(Alloc(&w->scale_dn, static_cast<size_t>(E * sd) * 4, d.key));
    }
    std::vector<uint8_t> mixed(2 * I * D);
    std::vector<float> mixed_scale(sg);
    cuda::InterleaveGateUpFp8(gate[0].codes.data(), gate[0].scale_inv.data(), up[0].codes.data(),
                              up[0].scale_inv.data(), I, D, mixed.data(), mixed_scale.data());
    RETURN_IF_ERROR(Upload(&w->data, mixed.data(), mixed.size(), e * mixed.size()));
    RETURN_IF_ERROR(Upload(&w->scale_gu, mixed_scale.data(), sg * 4, e * sg * 4));
    RETURN_IF_ERROR(Upload(&w->data2, down[0].codes.data(), D * I, e * D * I));
    RETURN_IF_ERROR(Upload(&w->scale_dn, down[0].scale_inv.data(), sd * 4, e * sd * 4));
    gate.clear();
    up.clear();
    down.clear();
  }
  w->fp8_experts = true;
  w->bytes = static_cast<int64_t>(w->data.bytes() + w->data2.bytes() + w->scale_gu.bytes() +
                                  w->scale_dn.bytes());
  w->fp8_bytes = w->bytes;
  fp8_max_k_ = std::max(fp8_max_k_, std::max(D, I));
  fp8_moe_inter_ = std::max(fp8_moe_inter_, I);
  return true;
}

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
  ASSIGN_OR_RETURN(const bool fp8, LoadFp8(d, reader, w.get()));
  if (fp8) {
    w->first_expert = d.first_expert;
    w->local_experts = d.local_experts;
    w->total_experts = d.total_experts;
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
