// Weight storage of the CPU backend: f32 or bf16 by the run's precision (GEMM weights,
// embedding), always f32 for norms, router, bias and kv_b (bf16-rounded values in bf16 runs, as
// the absorption runs in f32). FP8 and FP4 checkpoint weights stay quantised where the GEMM
// reads them (see cpu_layers.cc), one segment per checkpoint part, unless keep_fp8 is off.
#include <new>

#include "absl/strings/str_cat.h"
#include "src/backend_cpu/cpu_backend.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"

namespace dsinfer::cpu_backend {

absl::StatusOr<Matrix> CpuOps::ReadMatrix(const WeightDesc& d, absl::Span<const TensorPart> parts,
                                          WeightReader& reader, bool allow_fp8) {
  Matrix m;
  m.cols = parts.front().cols();
  for (const TensorPart& p : parts) m.rows += p.rows();
  const bool f32_role = d.role == WeightRole::kLinearF32 || d.role == WeightRole::kVector ||
                        d.role == WeightRole::kMlaKvB;
  const bool quant_role = allow_fp8 && opts_.keep_fp8 && !f32_role && d.role != WeightRole::kEmbedding;
  // FP4 kept when every part is packed FP4 and starts on a 32-column scale block.
  bool fp4 = quant_role;
  for (const TensorPart& p : parts) fp4 = fp4 && reader.store().IsFp4(p.name);
  if (fp4) {
    std::vector<Fp4Segment> segs;
    int64_t row0 = 0;
    for (const TensorPart& p : parts) {
      auto s = reader.store().ReadFp4(p.name, p.shape, p.slice ? &*p.slice : nullptr);
      if (!s.ok()) {
        if (s.status().code() != absl::StatusCode::kFailedPrecondition) return s.status();
        segs.clear();  // a slice off the scale grid: dequantise this weight instead
        break;
      }
      segs.push_back({.row0 = row0, .rows = s->rows,
                      .codes = HugeVector<uint8_t>(s->codes.begin(), s->codes.end()),
                      .scales = std::move(s->scales)});
      row0 += p.rows();
    }
    if (!segs.empty()) {
      m.fp4 = std::move(segs);
      return m;
    }
  }
  // FP8 kept when every part is stored FP8 and starts on a scale block.
  bool fp8 = allow_fp8 && opts_.keep_fp8 && !f32_role && d.role != WeightRole::kEmbedding;
  for (const TensorPart& p : parts) fp8 = fp8 && reader.IsFp8(p);
  if (fp8) {
    std::vector<Fp8Segment> segs;
    int64_t row0 = 0;
    for (const TensorPart& p : parts) {
      auto s = reader.ReadFp8(p);
      if (!s.ok()) {
        if (s.status().code() != absl::StatusCode::kFailedPrecondition) return s.status();
        segs.clear();  // a slice off the scale grid: dequantise this weight instead
        break;
      }
      segs.push_back({.row0 = row0, .rows = s->rows, .codes = HugeVector<uint8_t>(s->codes.begin(), s->codes.end()),
                      .scale_inv = std::move(s->scale_inv), .block_n = s->block_n,
                      .block_k = s->block_k});
      row0 += p.rows();
    }
    if (!segs.empty()) {
      m.fp8 = std::move(segs);
      return m;
    }
  }
  m.bf16 = !f32_role && opts_.precision == Precision::kBF16;
  try {
    if (m.bf16) m.b16.resize(static_cast<size_t>(m.rows * m.cols));
    else m.f32.resize(static_cast<size_t>(m.rows * m.cols));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("[", m.rows, ", ", m.cols, "] does not fit in memory"));
  }
  int64_t row0 = 0;
  for (const TensorPart& p : parts) {
    if (m.bf16) RETURN_IF_ERROR(reader.ReadBf16(p, m.b16.data() + row0 * m.cols));
    else RETURN_IF_ERROR(reader.ReadF32(p, m.f32.data() + row0 * m.cols));
    row0 += p.rows();
  }
  if (d.role == WeightRole::kMlaKvB && opts_.precision == Precision::kBF16)
    for (float& x : m.f32) x = RoundToBf16(x);
  return m;
}

absl::StatusOr<std::unique_ptr<BackendWeight>> CpuOps::LoadWeight(const WeightDesc& d,
                                                                  WeightReader& reader) {
  auto w = std::make_unique<CpuWeight>();
  w->role = d.role;
  w->rows = d.rows;
  w->cols = d.cols;
  if (d.role != WeightRole::kExperts) {
    ASSIGN_OR_RETURN(w->m, ReadMatrix(d, d.parts, reader, /*allow_fp8=*/true));
    w->bytes = w->m.bytes();
    if (!w->m.fp8.empty() || !w->m.fp4.empty()) w->fp8_bytes = w->bytes;
    return w;
  }
  // Experts: parts are (gate, up, down) per local expert.
  w->first_expert = d.first_expert;
  for (int64_t e = 0; e < d.local_experts; ++e) {
    absl::Span<const TensorPart> parts(d.parts.data() + 3 * e, 3);
    ASSIGN_OR_RETURN(Matrix gu, ReadMatrix(d, parts.subspan(0, 2), reader, true));
    ASSIGN_OR_RETURN(Matrix dn, ReadMatrix(d, parts.subspan(2, 1), reader, true));
    for (const Matrix* m : {&gu, &dn}) {
      w->bytes += m->bytes();
      if (!m->fp8.empty() || !m->fp4.empty()) w->fp8_bytes += m->bytes();
    }
    w->gate_up.push_back(std::move(gu));
    w->down.push_back(std::move(dn));
  }
  return w;
}

}  // namespace dsinfer::cpu_backend
