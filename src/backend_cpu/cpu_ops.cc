// CpuOps: step memory, the KV cache, collectives over the Gloo communicator, and the outputs
// (sampling, logprobs) of the CPU backend.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/logprobs.h"
#include "src/backend_cpu/cpu_backend.h"
#include "src/core/memory_info.h"
#include "src/core/status_macros.h"

namespace dsinfer {

std::unique_ptr<BackendOps> MakeCpuOps(const CpuOpsOptions& options) {
  return std::make_unique<cpu_backend::CpuOps>(options);
}

namespace cpu_backend {
namespace {

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  if (const char* env = std::getenv("DSINFER_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

constexpr size_t kAlign = 64;

}  // namespace

void* Arena::Allocate(size_t bytes) {
  bytes = (bytes + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
  undo_.push_back({live_, cur_, used_});
  while (cur_ < chunks_.size() && used_ + bytes > sizes_[cur_]) {
    ++cur_;  // the rest of this chunk stays unused until a release below it
    used_ = 0;
  }
  if (cur_ == chunks_.size()) {
    const size_t size =
        std::max<size_t>({bytes, size_t{16} << 20, sizes_.empty() ? 0 : 2 * sizes_.back()});
    AddChunk(size);
    used_ = 0;
  }
  void* p = bases_[cur_] + used_;
  used_ += bytes;
  live_ += static_cast<int64_t>(bytes);
  peak_ = std::max(peak_, live_);
  return p;
}

void Arena::AddChunk(size_t size) {
  chunks_.push_back(std::make_unique<char[]>(size + kAlign));
  const uintptr_t p = reinterpret_cast<uintptr_t>(chunks_.back().get());
  bases_.push_back(reinterpret_cast<char*>((p + kAlign - 1) / kAlign * kAlign));
  sizes_.push_back(size);
}

void Arena::Release(int64_t mark) {
  while (!undo_.empty() && undo_.back().live >= mark) {
    cur_ = undo_.back().cur;
    used_ = undo_.back().used;
    undo_.pop_back();
  }
  live_ = mark;
}

void Arena::Reset() {
  // Keep one chunk as large as all of them, so steps of that size allocate nothing.
  if (chunks_.size() > 1) {
    size_t total = 0;
    for (size_t s : sizes_) total += s;
    chunks_.clear();
    bases_.clear();
    sizes_.clear();
    AddChunk(total);
  }
  cur_ = 0;
  used_ = 0;
  live_ = 0;
  undo_.clear();
}

int64_t Matrix::bytes() const {
  int64_t b = static_cast<int64_t>(f32.size() * 4 + b16.size() * 2);
  for (const Fp8Segment& s : fp8) b += static_cast<int64_t>(s.codes.size() + s.scale_inv.size() * 4);
  for (const Fp4Segment& s : fp4) b += static_cast<int64_t>(s.codes.size() + s.scales.size());
  return b;
}

CpuOps::CpuOps(const CpuOpsOptions& o)
    : opts_(o), pool_(ResolveThreads(o.threads)), comm_(o.comm) {
  pfor_ = [this](int64_t n, const cpu::RangeBody& body) { pool_.ParallelFor(n, body); };
  // bf16 runs do their big GEMMs on pool_ and leave only small f32 ops (router, kv_b) to
  // OpenBLAS: its own threads would then mostly spin against the pool's (measured: 15% more CPU
  // per decode token), so it runs single-threaded there.
  cpu::SetBlasThreads(o.precision == Precision::kBF16 ? 1 : pool_.num_threads());
}

absl::StatusOr<int64_t> CpuOps::AvailableKvBytes() const { return AvailableMemoryBytes(); }

absl::Status CpuOps::AllocateKvCache(const KvCacheSpec& spec, int32_t num_blocks) {
  if (spec.dtype != KvDType::kF32)
    return absl::InvalidArgumentError("the CPU backend keeps its KV cache in f32");
  if (num_blocks < 1) return absl::InvalidArgumentError("kv cache: at least one block is needed");
  spec_ = spec;
  layer_stride_ = static_cast<int64_t>(num_blocks) * spec.block_size * spec.row_width;
  const int64_t total = layer_stride_ * spec.num_layers;
  try {
    cache_.assign(static_cast<size_t>(total), 0.f);
    index_layer_stride_ = static_cast<int64_t>(num_blocks) * spec.block_size * spec.index_row_bytes;
    index_cache_.assign(static_cast<size_t>(index_layer_stride_ * spec.num_layers), 0);
  } catch (const std::bad_alloc&) {
    cache_.clear();
    index_cache_.clear();
    return absl::ResourceExhaustedError(absl::StrCat(
        "kv cache: ", num_blocks, " blocks of ", spec.bytes_per_block(),
        " bytes (f32) do not fit in memory"));
  }
  num_blocks_ = num_blocks;
  return absl::OkStatus();
}

absl::Status CpuOps::BeginStep(const StepInput& step) {
  if (num_blocks_ == 0) return absl::FailedPreconditionError("no KV cache allocated");
  step_ = &step;
  arena_.Reset();
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CpuOps::Scratch(int64_t rows, int64_t cols, ElemType dtype) {
  if (rows < 0 || cols < 0) return absl::InvalidArgumentError("scratch: negative size");
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(rows * cols, 1) * ElemBytes(dtype));
  return Tensor{arena_.Allocate(bytes), dtype, rows, cols, cols};
}

namespace {

// Calls f(dst_row, src_row, bytes) for every row of two tensors of the same shape and type.
template <typename F>
void ForRows(Tensor a, Tensor b, F f) {
  const int64_t eb = ElemBytes(a.dtype);
  for (int64_t r = 0; r < a.rows; ++r)
    f(static_cast<char*>(a.data) + r * a.ld * eb, static_cast<char*>(b.data) + r * b.ld * eb,
      a.cols * eb);
}

absl::Status SameShape(Tensor a, Tensor b, const char* op) {
  if (a.rows == b.rows && a.cols == b.cols && a.dtype == b.dtype) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(op, ": shapes differ"));
}

}  // namespace

absl::Status CpuOps::Zero(Tensor t) {
  ForRows(t, t, [](char* d, char*, int64_t n) { std::memset(d, 0, n); });
  return absl::OkStatus();
}

absl::Status CpuOps::Add(Tensor dst, Tensor src) {
  RETURN_IF_ERROR(SameShape(dst, src, "add"));
  for (int64_t r = 0; r < dst.rows; ++r) {
    float* d = dst.as<float>() + r * dst.ld;
    const float* s = src.as<float>() + r * src.ld;
    for (int64_t j = 0; j < dst.cols; ++j) d[j] += s[j];
  }
  return absl::OkStatus();
}

absl::Status CpuOps::CopyToHost(Tensor src, void* dst) {
  const int64_t row = src.cols * ElemBytes(src.dtype);
  for (int64_t r = 0; r < src.rows; ++r)
    std::memcpy(static_cast<char*>(dst) + r * row,
                static_cast<char*>(src.data) + r * src.ld * ElemBytes(src.dtype), row);
  return absl::OkStatus();
}

absl::Status CpuOps::CopyFromHost(const void* src, Tensor dst) {
  const int64_t row = dst.cols * ElemBytes(dst.dtype);
  for (int64_t r = 0; r < dst.rows; ++r)
    std::memcpy(static_cast<char*>(dst.data) + r * dst.ld * ElemBytes(dst.dtype),
                static_cast<const char*>(src) + r * row, row);
  return absl::OkStatus();
}

absl::Status CpuOps::GatherRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) {
  if (static_cast<int64_t>(rows.size()) != dst.rows || src.cols != dst.cols ||
      src.dtype != dst.dtype)
    return absl::InternalError("gather rows: shapes differ");
  const int64_t eb = ElemBytes(src.dtype);
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(static_cast<char*>(dst.data) + i * dst.ld * eb,
                static_cast<char*>(src.data) + rows[i] * src.ld * eb, src.cols * eb);
  return absl::OkStatus();
}

absl::Status CpuOps::ScatterAddRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) {
  if (static_cast<int64_t>(rows.size()) != src.rows || src.cols != dst.cols)
    return absl::InternalError("scatter rows: shapes differ");
  for (size_t i = 0; i < rows.size(); ++i) {
    float* d = dst.as<float>() + rows[i] * dst.ld;
    const float* s = src.as<float>() + i * src.ld;
    for (int64_t j = 0; j < src.cols; ++j) d[j] += s[j];
  }
  return absl::OkStatus();
}

// ---- collectives ---------------------------------------------------------------------------

absl::Status CpuOps::AllReduce(Tensor t) {
  if (comm_ == nullptr || t.empty()) return absl::OkStatus();
  if (!t.contiguous()) return absl::InternalError("all-reduce: tensor not contiguous");
  return comm_->AllReduceSum(t.data, t.rows * t.cols, CommDType::kF32);
}

absl::Status CpuOps::AllGatherRows(Tensor local, absl::Span<const int64_t> rows_per_rank,
                                   Tensor out) {
  if (!out.contiguous() || !local.contiguous())
    return absl::InternalError("all-gather: tensors not contiguous");
  if (comm_ == nullptr) return CopyFromHost(local.data, out);
  const int64_t row = local.cols * ElemBytes(local.dtype);
  std::vector<int64_t> bytes(rows_per_rank.size());
  for (size_t r = 0; r < bytes.size(); ++r) bytes[r] = rows_per_rank[r] * row;
  return comm_->AllGatherV(local.data, out.data, bytes);
}

absl::Status CpuOps::AllGatherCols(Tensor local, absl::Span<const int64_t> cols_per_rank,
                                   Tensor out) {
  if (comm_ == nullptr) return CopyFromHost(local.data, out);
  const int64_t R = local.rows;
  std::vector<int64_t> bytes(cols_per_rank.size());
  int64_t total = 0;
  for (size_t r = 0; r < bytes.size(); ++r) {
    bytes[r] = R * cols_per_rank[r] * 4;
    total += R * cols_per_rank[r];
  }
  std::vector<float> packed(local.rows * local.cols), all(total);
  RETURN_IF_ERROR(CopyToHost(local, packed.data()));
  RETURN_IF_ERROR(comm_->AllGatherV(packed.data(), all.data(), bytes));
  // all: per rank [R, cols_r] blocks -> out [R, sum cols].
  const float* src = all.data();
  int64_t c0 = 0;
  for (int64_t w : cols_per_rank) {
    for (int64_t i = 0; i < R; ++i)
      std::memcpy(out.as<float>() + i * out.ld + c0, src + i * w, w * sizeof(float));
    src += R * w;
    c0 += w;
  }
  return absl::OkStatus();
}

absl::Status CpuOps::AllToAllRows(Tensor send, absl::Span<const int64_t> send_rows, Tensor recv,
                                  absl::Span<const int64_t> recv_rows) {
  if (!send.contiguous() || !recv.contiguous())
    return absl::InternalError("all-to-all: tensors not contiguous");
  if (comm_ == nullptr) return CopyFromHost(send.data, recv);
  const int64_t row = send.cols * ElemBytes(send.dtype);
  std::vector<int64_t> sb(send_rows.size()), rb(recv_rows.size());
  for (size_t r = 0; r < sb.size(); ++r) sb[r] = send_rows[r] * row;
  for (size_t r = 0; r < rb.size(); ++r) rb[r] = recv_rows[r] * row;
  return comm_->AllToAllV(send.data, sb, recv.data, rb);
}

absl::Status CpuOps::ExchangeCounts(absl::Span<const int64_t> send, absl::Span<int64_t> recv) {
  if (comm_ == nullptr) {
    std::copy(send.begin(), send.end(), recv.begin());
    return absl::OkStatus();
  }
  return comm_->AllToAll(send.data(), recv.data(), sizeof(int64_t));
}

void CpuOps::InitExpertLoad(const std::vector<bool>& is_moe, int64_t n_experts) {
  expert_load_.tokens.assign(is_moe.size(), {});
  for (size_t l = 0; l < is_moe.size(); ++l)
    if (is_moe[l]) expert_load_.tokens[l].assign(n_experts, 0);
  load_experts_ = n_experts;
  if (comm_ != nullptr) pending_load_.assign(is_moe.size() * n_experts, 0.f);
}

absl::Status CpuOps::ReduceExpertLoad() {
  if (pending_load_.empty()) return absl::OkStatus();
  // Routing counts of every rank's token slice, so that each rank sees the whole step's load.
  RETURN_IF_ERROR(comm_->AllReduceSum(pending_load_.data(),
                                      static_cast<int64_t>(pending_load_.size()), CommDType::kF32));
  for (size_t l = 0; l < expert_load_.tokens.size(); ++l)
    for (size_t e = 0; e < expert_load_.tokens[l].size(); ++e)
      expert_load_.tokens[l][e] += static_cast<int64_t>(pending_load_[l * load_experts_ + e]);
  std::fill(pending_load_.begin(), pending_load_.end(), 0.f);
  return absl::OkStatus();
}

// ---- outputs -------------------------------------------------------------------------------

absl::Status CpuOps::Sample(Tensor logits, absl::Span<const int32_t> rows,
                            absl::Span<const SamplingRow> params, int32_t* tokens) {
  for (size_t i = 0; i < rows.size(); ++i) {
    float* row = logits.as<float>() + rows[i] * logits.ld;
    tokens[i] = SampleRow(params[i], absl::MakeSpan(row, logits.cols), &sample_scratch_);
  }
  return absl::OkStatus();
}

absl::Status CpuOps::Logprobs(Tensor logits, absl::Span<const int32_t> rows,
                              absl::Span<const int32_t> chosen, int32_t top_n,
                              std::vector<SequenceResult*> out) {
  const int64_t n = static_cast<int64_t>(rows.size());
  top_n = static_cast<int32_t>(std::min<int64_t>(std::max(top_n, 0), logits.cols));
  std::vector<float> lp(n), top_lp(n * top_n);
  std::vector<int32_t> top_ids(n * top_n);
  cpu::Logprobs({.logits = logits.as<float>(), .ld = logits.ld, .vocab = logits.cols,
                 .rows = rows.data(), .chosen = chosen.data(), .n = n, .top_n = top_n,
                 .chosen_logprob = lp.data(), .top_ids = top_ids.data(),
                 .top_logprobs = top_lp.data()});
  for (int64_t i = 0; i < n; ++i) {
    out[i]->logprob = lp[i];
    out[i]->top.clear();
    for (int32_t j = 0; j < top_n; ++j)
      out[i]->top.push_back({top_ids[i * top_n + j], top_lp[i * top_n + j]});
  }
  return absl::OkStatus();
}

}  // namespace cpu_backend
}  // namespace dsinfer
