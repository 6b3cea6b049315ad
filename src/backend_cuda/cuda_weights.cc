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

int64_t Round16(int64_t n) { return (n + 15) / 16 * 16; }

// A [rows, cols] byte matrix with zero columns up to `cols_to`.
std::vector<uint8_t> PadCols(const std::vector<uint8_t>& m, int64_t rows, int64_t cols,
                             int64_t cols_to) {
  if (cols == cols_to) return m;
  std::vector<uint8_t> out(rows * cols_to, 0);
  for (int64_t r = 0; r < rows; ++r)
    std::copy(m.begin() + r * cols, m.begin() + (r + 1) * cols, out.begin() + r * cols_to);
  return out;
}

// ... and zero rows up to `rows_to`.
std::vector<uint8_t> PadRowsCols(const std::vector<uint8_t>& m, int64_t rows, int64_t cols,
                                 int64_t rows_to, int64_t cols_to) {
  std::vector<uint8_t> out = PadCols(m, rows, cols, cols_to);
  out.resize(rows_to * cols_to, 0);
  return out;
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
  // The GEMMs run on sm_89+ GPUs and take k % 16 == 0 (16-byte rows of codes): other widths
  // are padded with zero codes here, and the activations with zero columns where they are
  // quantised, which adds exactly nothing.
  if (!cuda::Fp8GemmSupported()) {
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
    const int64_t kp = Round16(d.cols);
    for (WeightStore::Fp8Slice& s : parts) {
      Fp8Part part{.row0 = row0, .rows = s.rows};
      const std::vector<uint8_t> codes = PadCols(s.codes, s.rows, d.cols, kp);
      RETURN_IF_ERROR(Alloc(&part.codes, codes.size(), d.key));
      RETURN_IF_ERROR(Upload(&part.codes, codes.data(), codes.size()));
      RETURN_IF_ERROR(Alloc(&part.scales, s.scale_inv.size() * 4, d.key));
      RETURN_IF_ERROR(Upload(&part.scales, s.scale_inv.data(), s.scale_inv.size() * 4));
      w->bytes += static_cast<int64_t>(codes.size() + s.scale_inv.size() * 4);
      row0 += s.rows;
      w->fp8.push_back(std::move(part));
    }
    w->fp8_k = kp;
    w->fp8_bytes = w->bytes;
    fp8_max_k_ = std::max(fp8_max_k_, kp);
    return true;
  }
  // Experts: gate/up codes interleaved with their scales (InterleaveGateUpFp8), down as stored;
  // the intermediate and hidden widths padded to 16 (zero codes; the scale grids keep their
  // block counts, as 16 divides 128).
  const int64_t E = d.local_experts, I0 = d.rows, D0 = d.cols;
  const int64_t I = Round16(I0), D = Round16(D0);
  const int64_t sg = 2 * ((I + 63) / 64) * ((D + 127) / 128);
  const int64_t sd = ((D0 + 127) / 128) * ((I + 127) / 128);
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
      RETURN_IF_ERROR(Alloc(&w->data2, static_cast<size_t>(E * D0 * I), d.key));
      RETURN_IF_ERROR(Alloc(&w->scale_gu, static_cast<size_t>(E * sg) * 4, d.key));
      RETURN_IF_ERROR(Alloc(&w->scale_dn, static_cast<size_t>(E * sd) * 4, d.key));
    }
    std::vector<uint8_t> mixed(2 * I * D);
    std::vector<float> mixed_scale(sg);
    const std::vector<uint8_t> g = PadRowsCols(gate[0].codes, I0, D0, I, D);
    const std::vector<uint8_t> u = PadRowsCols(up[0].codes, I0, D0, I, D);
    cuda::InterleaveGateUpFp8(g.data(), gate[0].scale_inv.data(), u.data(),
                              up[0].scale_inv.data(), I, D, mixed.data(), mixed_scale.data());
    RETURN_IF_ERROR(Upload(&w->data, mixed.data(), mixed.size(), e * mixed.size()));
    RETURN_IF_ERROR(Upload(&w->scale_gu, mixed_scale.data(), sg * 4, e * sg * 4));
    const std::vector<uint8_t> dn = PadCols(down[0].codes, D0, I0, I);
    RETURN_IF_ERROR(Upload(&w->data2, dn.data(), D0 * I, e * D0 * I));
    RETURN_IF_ERROR(Upload(&w->scale_dn, down[0].scale_inv.data(), sd * 4, e * sd * 4));
    gate.clear();
    up.clear();
    down.clear();
  }
  w->fp8_experts = true;
  w->rows = I;  // the padded intermediate width the kernels see
  w->fp8_k = D;
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
  // Routed experts: [E_local, 2I, D] gate/up interleaved per 64 rows, [E_local, D, I]. The
  // grouped GEMM takes k % 8 == 0: the intermediate width (a tensor-parallel slice may be any)
  // is padded with zero rows / columns, which add exactly nothing.
  const int64_t E = d.local_experts, I0 = d.rows, I = (I0 + 7) / 8 * 8, D = d.cols;
  if (D % 8 != 0)
    return absl::UnimplementedError(
        absl::StrCat("CUDA backend: hidden_size ", D, " is not a multiple of 8"));
  w->rows = I;
  w->first_expert = d.first_expert;
  w->local_experts = E;
  w->total_experts = d.total_experts;
  RETURN_IF_ERROR(Alloc(&w->data, static_cast<size_t>(E * 2 * I * D) * 2, d.key));
  RETURN_IF_ERROR(Alloc(&w->data2, static_cast<size_t>(E * D * I) * 2, d.key));
  std::vector<uint16_t> gate(I * D, 0), up(I * D, 0), mixed(2 * I * D), down0(D * I0), down(D * I, 0);
  for (int64_t e = 0; e < E; ++e) {
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e], gate.data()));  // rows I0.. stay zero
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e + 1], up.data()));
    RETURN_IF_ERROR(reader.ReadBf16(d.parts[3 * e + 2], down0.data()));
    for (int64_t r = 0; r < D; ++r)
      std::copy(down0.begin() + r * I0, down0.begin() + (r + 1) * I0, down.begin() + r * I);
    cuda::InterleaveGateUp(gate.data(), up.data(), I, D, mixed.data());
    RETURN_IF_ERROR(Upload(&w->data, mixed.data(), mixed.size() * 2, e * mixed.size() * 2));
    RETURN_IF_ERROR(Upload(&w->data2, down.data(), down.size() * 2, e * down.size() * 2));
  }
  w->bytes = static_cast<int64_t>(w->data.bytes() + w->data2.bytes());
  return w;
}

}  // namespace dsinfer::cuda_backend
