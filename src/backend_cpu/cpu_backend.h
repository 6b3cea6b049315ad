// Internal to src/backend_cpu: the CpuOps class (cpu_ops.cc: memory, step, collectives,
// outputs; cpu_weights.cc: weight storage; cpu_layers.cc: the layer ops).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "kernels/cpu/mla_attention.h"
#include "src/core/huge_pages.h"
#include "src/backend_cpu/cpu_ops.h"

namespace dsinfer::cpu_backend {

// FP8 e4m3 rows [row0, row0 + rows) of a weight with their 2-D block scales.
struct Fp8Segment {
  int64_t row0 = 0, rows = 0;
  HugeVector<uint8_t> codes;     // [rows, cols]
  std::vector<float> scale_inv;  // [ceil(rows / block_n), ceil(cols / block_k)]
  int64_t block_n = 128, block_k = 128;
};

// Packed FP4 E2M1 rows [row0, row0 + rows) of a weight (DeepSeek-V4 experts) with their E8M0
// scales, one per 32 inputs of a row (kernels/cpu/fp4.h).
struct Fp4Segment {
  int64_t row0 = 0, rows = 0;
  HugeVector<uint8_t> codes;   // [rows, cols / 2]
  std::vector<uint8_t> scales; // [rows, ceil(cols / 32)]
};

// A [rows, cols] matrix (HF [out, in] layout) in f32, bf16, FP8 or FP4 segments.
struct Matrix {
  int64_t rows = 0, cols = 0;
  bool bf16 = false;
  HugeVector<float> f32;  // weights stream through every step: on huge pages
  HugeVector<uint16_t> b16;
  std::vector<Fp8Segment> fp8;  // non-empty: the weight is kept as FP8
  std::vector<Fp4Segment> fp4;  // non-empty: the weight is kept as FP4
  const void* data() const { return bf16 ? static_cast<const void*>(b16.data()) : f32.data(); }
  int64_t bytes() const;
};

struct CpuWeight : BackendWeight {
  Matrix m;  // every role but kExperts
  // kExperts: expert first_expert + i holds gate_up[i] ([gate; up], [2I, D]) and down[i] ([D, I]).
  std::vector<Matrix> gate_up, down;
  int64_t first_expert = 0;
};

// Host memory handed out in call order (a stack) and reused every step.
class Arena {
 public:
  void* Allocate(size_t bytes);
  int64_t Mark() const { return live_; }  // bytes handed out and not released
  void Release(int64_t mark);
  void Reset();  // everything free; one chunk as large as the last step needed
  int64_t peak() const { return peak_; }

 private:
  struct Undo {
    int64_t live;
    size_t cur, used;
  };
  void AddChunk(size_t size);
  std::vector<Undo> undo_;  // state before each allocation since Reset
  int64_t live_ = 0;
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::vector<char*> bases_;  // each chunk's first aligned byte
  std::vector<size_t> sizes_;
  size_t cur_ = 0;   // chunk in use
  size_t used_ = 0;  // bytes of it in use
  int64_t peak_ = 0;
};

class CpuOps final : public BackendOps {
 public:
  explicit CpuOps(const CpuOpsOptions& o);
  const char* name() const override { return "cpu"; }

  absl::StatusOr<std::unique_ptr<BackendWeight>> LoadWeight(const WeightDesc& desc,
                                                            WeightReader& reader) override;
  KvDType kv_dtype() const override { return KvDType::kF32; }
  absl::StatusOr<int64_t> AvailableKvBytes() const override;
  absl::Status AllocateKvCache(const KvCacheSpec& spec, int32_t num_blocks) override;
  int32_t num_kv_blocks() const override { return num_blocks_; }

  ElemType gemm_dtype() const override { return ElemType::kF32; }
  bool keeps_fp8() const override { return opts_.keep_fp8; }
  absl::Status BeginStep(const StepInput& step) override;
  absl::StatusOr<Tensor> Scratch(int64_t rows, int64_t cols, ElemType dtype) override;
  int64_t ScratchMark() const override { return arena_.Mark(); }
  void ScratchRelease(int64_t mark) override { arena_.Release(mark); }
  int64_t scratch_peak() const override { return arena_.peak(); }
  absl::Status Zero(Tensor t) override;
  absl::Status Add(Tensor dst, Tensor src) override;
  absl::Status CopyToHost(Tensor src, void* dst) override;
  absl::Status CopyFromHost(const void* src, Tensor dst) override;
  absl::Status GatherRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) override;
  absl::Status ScatterAddRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) override;

  absl::Status Embed(const BackendWeight& table, int64_t vocab_begin, Tensor x) override;
  absl::Status EmbedIds(const BackendWeight& table, int64_t vocab_begin,
                        absl::Span<const int32_t> ids, Tensor x) override;
  absl::Status RmsNorm(Tensor x, const BackendWeight& w, float eps, Tensor y,
                       Tensor y2) override;
  absl::Status Linear(Tensor x, const BackendWeight& w, Tensor y, bool accumulate) override;
  absl::Status MlaAttention(int64_t layer, const MlaParams& p, const MlaInputs& in,
                            Tensor out) override;
  bool has_sparse_attention() const override { return true; }
  absl::Status IndexerTopK(int64_t layer, const IndexerParams& p, const IndexerInputs& in,
                           Tensor topk) override;
  bool has_gqa_attention() const override { return true; }
  absl::Status GqaAttention(int64_t layer, const GqaParams& p, Tensor q, Tensor k, Tensor v,
                            Tensor out) override;
  absl::Status AddBias(Tensor y, const BackendWeight& bias) override;
  absl::Status Mlp(Tensor x, const BackendWeight& gate_up, const BackendWeight& down, Tensor out,
                   bool accumulate) override;
  absl::Status MoeRoute(int64_t layer, Tensor x, const BackendWeight& gate,
                        const BackendWeight* bias, const RouterParams& p, Tensor ids,
                        Tensor weights) override;
  absl::Status Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight& experts,
                   const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                   Tensor out, bool accumulate) override;
  absl::Status SelectLogitRows(Tensor x, int64_t first, Tensor out) override;
  // DeepSeek-V4 (cpu_v4.cc).
  bool has_v4_ops() const override { return true; }
  absl::Status V4Attention(int64_t layer, const V4AttnParams& p, const V4AttnInputs& in,
                           Tensor out) override;
  absl::Status HyperPre(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                        const BackendWeight& scale, const HyperParams& p, Tensor collapsed,
                        Tensor post, Tensor comb) override;
  absl::Status HyperPost(Tensor y, Tensor post, Tensor comb, const HyperParams& p,
                         Tensor streams) override;
  absl::Status HyperHead(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                         const BackendWeight& scale, const HyperParams& p, Tensor out) override;
  absl::Status V4Route(int64_t layer, Tensor x, int64_t first_token, const BackendWeight& gate,
                       const BackendWeight* bias, const BackendWeight* tid2eid,
                       const V4RouterParams& p, Tensor ids, Tensor weights) override;
  absl::Status V4Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight* experts,
                     const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                     float swiglu_limit, Tensor out) override;

  int rank() const override { return comm_ ? comm_->rank() : 0; }
  int world_size() const override { return comm_ ? comm_->size() : 1; }
  absl::Status AllReduce(Tensor t) override;
  absl::Status AllGatherRows(Tensor local, absl::Span<const int64_t> rows_per_rank,
                             Tensor out) override;
  absl::Status AllGatherCols(Tensor local, absl::Span<const int64_t> cols_per_rank,
                             Tensor out) override;
  absl::Status AllToAllRows(Tensor send, absl::Span<const int64_t> send_rows, Tensor recv,
                            absl::Span<const int64_t> recv_rows) override;
  absl::Status ExchangeCounts(absl::Span<const int64_t> send, absl::Span<int64_t> recv) override;
  void InitExpertLoad(const std::vector<bool>& is_moe, int64_t n_experts) override;
  absl::Status ReduceExpertLoad() override;
  const ExpertLoad& expert_load() const override { return expert_load_; }

  absl::Status Sample(Tensor logits, absl::Span<const int32_t> rows,
                      absl::Span<const SamplingRow> params, int32_t* tokens) override;
  absl::Status Logprobs(Tensor logits, absl::Span<const int32_t> rows,
                        absl::Span<const int32_t> chosen, int32_t top_n,
                        std::vector<SequenceResult*> out) override;

 private:
  // y (+)= x · w^T for one matrix (f32, bf16 or FP8 segments).
  void MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy,
              bool accumulate);
  // SwiGLU MLP over n rows; clip: DeepSeek-V4's clipped SwiGLU with that limit (<= 0: none)
  // instead of the plain one.
  void MlpRows(const Matrix& gate_up, const Matrix& down, const float* x, int64_t ldx, int64_t n,
               float* out, bool accumulate, std::optional<float> clip = std::nullopt);
  // Routed experts: sum[t] (+)= w * expert(x[t]) for every (expert, w) of row t, in ascending
  // expert id per row, with each expert's rows in one GEMM (so a row's bits do not depend on its
  // batch). Ids this rank does not hold are an error, or skipped with skip_foreign.
  absl::Status RoutedRows(Tensor x, Tensor ids, Tensor weights, const CpuWeight& experts,
                          bool skip_foreign, std::optional<float> clip, float* sum);
  absl::StatusOr<Matrix> ReadMatrix(const WeightDesc& d, absl::Span<const TensorPart> parts,
                                    WeightReader& reader, bool allow_fp8);
  float* layer_cache(int64_t layer) { return cache_.data() + layer * layer_stride_; }
  // Sparse MLA (cpu_sparse.cc): every token in the absorbed form over its selected rows only.
  absl::Status SparseMla(const MlaParams& p, const float* q, const cpu::PagedLatentView& view,
                         Tensor topk, const float* kv_b, float* out);

  CpuOpsOptions opts_;
  ThreadPool pool_;
  cpu::ParallelFor pfor_;
  Communicator* comm_;
  Arena arena_;
  const StepInput* step_ = nullptr;
  KvCacheSpec spec_;
  int32_t num_blocks_ = 0;
  int64_t layer_stride_ = 0;
  std::vector<float> cache_;  // [layers, blocks, block_size, width]
  int64_t index_layer_stride_ = 0;   // bytes of one layer's index keys
  std::vector<uint8_t> index_cache_;  // [layers, blocks, block_size, index_row_bytes]
  ExpertLoad expert_load_;
  std::vector<float> pending_load_;  // [layers * experts] routed this step (sharded runs)
  int64_t load_experts_ = 0;
  std::vector<std::pair<float, int32_t>> sample_scratch_;
};

}  // namespace dsinfer::cpu_backend
