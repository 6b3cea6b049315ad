// Internal to src/backend_cuda: the CudaOps class (cuda_ops.cc: set-up, step inputs, scratch,
// replay, collectives, outputs; cuda_weights.cc: weight storage; cuda_layers.cc: layer ops).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "kernels/cuda/mla_attention.h"
#include "src/backend_cuda/cuda_ops.h"
#include "src/backend_cuda/device_memory.h"

namespace dsinfer::cuda_backend {

// A weight on the GPU. bf16 matrices in HF [out, in] layout (FP8 checkpoints dequantised with
// their block scales, as the CPU's bf16 path reads them), f32 vectors / router; kv_b in bf16 and,
// for the generic attention kernel, f32; routed experts stacked [E, 2I, D] (gate/up interleaved
// per 64 rows for the grouped GEMM's SiLU epilogue) and [E, D, I].
// FP8 kept (Hopper / Ada GEMMs): e4m3 codes with the checkpoint's 128x128 block scales, one
// part per checkpoint tensor (fused weights keep their parts, whatever the block grid).
struct Fp8Part {
  int64_t row0 = 0, rows = 0;
  DeviceBuffer codes;   // u8 [rows, cols]
  DeviceBuffer scales;  // f32 [ceil(rows / 128), ceil(cols / 128)]
};

struct CudaWeight : BackendWeight {
  DeviceBuffer data;        // the matrix / vector (experts: gate_up stack)
  DeviceBuffer data2;       // experts: down stack; kv_b: the f32 copy
  bool f32 = false;         // data holds f32 (else bf16)
  int64_t first_expert = 0, local_experts = 0, total_experts = 0;
  std::vector<Fp8Part> fp8;  // non-empty: a Linear kept as FP8 (data unused)
  int64_t fp8_k = 0;         // FP8: the input width the codes are padded to (a multiple of 16)
  bool fp8_experts = false;  // experts kept as FP8: data / data2 hold codes (gate_up interleaved)
  DeviceBuffer scale_gu;     // f32 [E, 2 * ceil(I / 64), ceil(D / 128)] (interleaved)
  DeviceBuffer scale_dn;     // f32 [E, ceil(D / 128), ceil(I / 128)]
};

// Per-step inputs: fixed regions of one pinned host buffer mirrored on the device. The device
// addresses never change, so a captured CUDA graph reads each step's values.
class StepArena {
 public:
  enum Region { kCounts, kTokens, kPositions, kSlots, kLogitRows, kSeqs, kWork, kCombine, kTables,
                kTokenTables, kNumRegions };
  absl::Status Init(const size_t (&bytes)[kNumRegions]);
  template <typename T>
  const T* dev(Region r) const {
    return reinterpret_cast<const T*>(dev_.as<unsigned char>() + off_[r]);
  }
  // Copies n elements of T into region r (host) and queues their upload; false when too many.
  template <typename T>
  bool Put(Region r, const T* data, size_t n, cudaStream_t stream, cudaError_t* err) {
    if (n * sizeof(T) > size_[r]) return false;
    if (n == 0) return true;
    std::memcpy(host_.as<unsigned char>() + off_[r], data, n * sizeof(T));
    const cudaError_t e = cudaMemcpyAsync(dev_.as<unsigned char>() + off_[r],
                                          host_.as<unsigned char>() + off_[r], n * sizeof(T),
                                          cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) *err = e;
    return true;
  }

 private:
  PinnedBuffer host_;
  DeviceBuffer dev_;
  size_t off_[kNumRegions] = {}, size_[kNumRegions] = {};
};

// What the layers of one step read (device pointers into the step arena).
struct StepView {
  int64_t num_tokens = 0, num_seqs = 0, num_logit_rows = 0;
  bool all_decode = false;
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* slots = nullptr;
  const int32_t* logit_rows = nullptr;
  const int32_t* tables = nullptr;
  const int32_t* token_table = nullptr;  // [tokens] offset of each token's table in `tables`
  const cuda::MlaSeqDesc* seqs = nullptr;
  const cuda::MlaWorkItem* work = nullptr;
  const cuda::MlaCombineItem* combine = nullptr;
  const int32_t* counts = nullptr;  // device [num_work, num_combine]
  int32_t num_work = 0, num_combine = 0;
  int32_t work_grid = 0, combine_grid = 0;  // launch sizes (bounds under CUDA graphs)
  int64_t work_bound = 0, tile_bound = 0;   // the bounds a graph of this batch size uses
  cuda::MlaKernel kernel = cuda::MlaKernel::kGeneric;
  int32_t tile_rows = 16;
};

// Device workspaces of the ops (not the program's scratch), sized once in Reserve.
struct Workspace {
  DeviceBuffer q_nope, q_attn, o_lat;                    // bf16 tensor-core attention path
  DeviceBuffer q_attn_f32, o_lat_f32, attn_f32;          // f32 generic attention path
  DeviceBuffer partial_out, partial_lse;                 // split-KV partials
  DeviceBuffer gu, act;                                  // MLP: f32 [C, 2I], bf16 [C, I]
  DeviceBuffer x_bf16;                                   // GEMM input cast from f32
  DeviceBuffer x_f32;                                    // bf16 input of an f32 GEMM, cast
  DeviceBuffer idx_codes, idx_w, idx_scores;             // indexer: u8 [T, H, D], f32 [T, H],
                                                         // f32 [rows per pass, max_positions]
  DeviceBuffer router;                                   // f32 [T, E]
  DeviceBuffer slot_of, row_token, expert_offsets, tile_offsets;
  DeviceBuffer moe_act, moe_y, shared_out;               // [C*K, I] bf16, [C*K, D] f32, [C, D]
  DeviceBuffer moe_ids, moe_w;                           // remapped ids / weights (EP rows)
  DeviceBuffer expert_load;                              // i64 [layers, E]
  DeviceBuffer index;                                    // i32 row indices (gather / scatter)
  DeviceBuffer sample_params, sample_csr, sample_out;    // sampling inputs / outputs
  DeviceBuffer lp_out;                                   // logprobs outputs
  DeviceBuffer aq, aq_scale;                             // FP8 activations: u8 [T, K], f32 blocks
  DeviceBuffer fp8_split;                                // FP8 GEMM split-k partials
  DeviceBuffer blas;                                     // cuBLAS workspace
};

class CudaOps final : public BackendOps {
 public:
  static absl::StatusOr<std::unique_ptr<CudaOps>> Create(const CudaOpsOptions& o);
  ~CudaOps() override;
  const char* name() const override { return "cuda"; }

  absl::StatusOr<std::unique_ptr<BackendWeight>> LoadWeight(const WeightDesc& desc,
                                                            WeightReader& reader) override;
  KvDType kv_dtype() const override { return KvDType::kBF16; }
  absl::StatusOr<int64_t> AvailableKvBytes() const override;
  absl::Status AllocateKvCache(const KvCacheSpec& spec, int32_t num_blocks) override;
  int32_t num_kv_blocks() const override { return num_blocks_; }

  ElemType gemm_dtype() const override { return ElemType::kBF16; }
  bool keeps_fp8() const override { return opts_.keep_fp8; }
  absl::Status Reserve(const WorkspaceNeeds& needs) override;
  absl::Status BeginStep(const StepInput& step) override;
  absl::StatusOr<Tensor> Scratch(int64_t rows, int64_t cols, ElemType dtype) override;
  int64_t ScratchMark() const override { return scratch_used_; }
  void ScratchRelease(int64_t mark) override { scratch_used_ = mark; }
  int64_t scratch_peak() const override { return scratch_peak_; }
  int64_t max_step_tokens() const override { return opts_.max_batched_tokens; }
  int64_t max_step_seqs() const override { return opts_.max_seqs; }
  int64_t max_logit_rows() const override { return opts_.max_logit_rows; }
  absl::Status Zero(Tensor t) override;
  absl::Status Add(Tensor dst, Tensor src) override;
  absl::Status CopyToHost(Tensor src, void* dst) override;
  absl::Status CopyFromHost(const void* src, Tensor dst) override;
  absl::Status GatherRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) override;
  absl::Status ScatterAddRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) override;

  absl::Status Embed(const BackendWeight& table, int64_t vocab_begin, Tensor x) override;
  absl::Status EmbedIds(const BackendWeight& table, int64_t vocab_begin,
                        absl::Span<const int32_t> ids, Tensor x) override;
  absl::Status RmsNorm(Tensor x, const BackendWeight& w, float eps, Tensor y, Tensor y2) override;
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
  const ExpertLoad& expert_load() const override;

  absl::Status Sample(Tensor logits, absl::Span<const int32_t> rows,
                      absl::Span<const SamplingRow> params, int32_t* tokens) override;
  absl::Status Logprobs(Tensor logits, absl::Span<const int32_t> rows,
                        absl::Span<const int32_t> chosen, int32_t top_n,
                        std::vector<SequenceResult*> out) override;

  bool can_replay() const override { return opts_.cuda_graphs && comm_ == nullptr; }
  void ResetExpertLoad() override;
  int64_t ReplayKey(const StepInput& step) const override;
  bool HasReplay(int64_t key) const override;
  absl::Status BeginCapture(int64_t key) override;
  absl::Status EndCapture(int64_t key) override;
  absl::Status Replay(int64_t key) override;
  absl::Status Sync() override;

 private:
  explicit CudaOps(const CudaOpsOptions& o) : opts_(o) {}
  absl::Status Init();
  // y = x · W^T (bf16 or f32 operands per the weight; x cast to bf16 when needed).
  absl::Status Gemm(Tensor x, const CudaWeight& w, float* y, int64_t ldy, bool accumulate);
  // The same over a weight kept as FP8: x (bf16) quantised per 1x128 block, then each part's
  // block-scaled GEMM into its columns of y.
  absl::Status GemmFp8(Tensor x, const CudaWeight& w, float* y, int64_t ldy, bool accumulate);
  absl::Status QuantizeActivations(const void* x, bool x_f32, int64_t ldx, int64_t m, int64_t k,
                                   int64_t kp);
  absl::Status MoeExpertsFp8(Tensor x, int64_t c0, int64_t n, int64_t K, const CudaWeight& ex,
                             int64_t max_tiles);
  // Loads an FP8 Linear / experts weight when the checkpoint, the shapes and the GPU allow it
  // (false: the caller dequantises to bf16).
  absl::StatusOr<bool> LoadFp8(const WeightDesc& d, WeightReader& reader, CudaWeight* w);
  absl::Status MlpRows(const __nv_bfloat16* x, int64_t ldx, int64_t n, const CudaWeight& gate_up,
                       const CudaWeight& down, float* out, int64_t ldo, bool accumulate);
  // Host indices uploaded into the index workspace (synchronously ordered on the stream).
  absl::StatusOr<const int32_t*> UploadIndex(absl::Span<const int32_t> rows);
  // MLA over each token's selected rows (DeepSeek Sparse Attention): q rows [N * heads, width]
  // and the latent output [N * heads, kv_lora], bf16 or f32 (one of each pair set).
  absl::Status SparseAttend(int64_t layer, const MlaParams& p, Tensor topk, const __nv_bfloat16* q,
                            const float* q_f32, __nv_bfloat16* out, float* out_f32);
  // The index cache (DeepSeek Sparse Attention) follows every layer's latent rows in cache_.
  uint8_t* index_cache(int64_t layer) const {
    const int64_t rows = static_cast<int64_t>(num_blocks_) * spec_.block_size;
    return cache_.as<uint8_t>() + spec_.num_layers * rows * spec_.row_width * 2 +
           layer * rows * spec_.index_row_bytes;
  }
  __nv_bfloat16* layer_cache(int64_t layer) const {
    return cache_.as<__nv_bfloat16>() + layer * static_cast<int64_t>(num_blocks_) *
                                            spec_.block_size * spec_.row_width;
  }
  // Host staging of a device tensor for the Gloo collectives (ranks sharing a GPU).
  absl::Status ToHost(Tensor t, std::vector<char>* host);
  absl::Status FromHost(const std::vector<char>& host, Tensor t);

  // Device collectives between ranks on separate GPUs (NCCL on our stream); null when the ranks
  // share GPUs or NCCL is not built: then collectives are host-staged over comm_ (Gloo).
  absl::Status MaybeStartNccl();
  CudaOpsOptions opts_;
  Communicator* comm_ = nullptr;
  std::unique_ptr<Communicator> nccl_;
  DeviceBuffer gather_;  // NCCL all-gather of columns: per-rank blocks before their interleave
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  int num_sms_ = 1;
  bool tc_attention_ = false;
  WorkspaceNeeds needs_;
  bool reserved_ = false;
  Workspace ws_;
  DeviceBuffer scratch_;
  int64_t scratch_used_ = 0, scratch_peak_ = 0;
  StepArena arena_;
  StepView step_;
  const StepInput* host_step_ = nullptr;
  int64_t max_partials_ = 0, max_work_ = 0, max_combine_ = 0;
  // bf16 [layers, num_blocks, block_size, width], then (DeepSeek Sparse Attention) the index
  // rows u8 [layers, num_blocks, block_size, index_row_bytes].
  DeviceBuffer cache_;
  KvCacheSpec spec_;
  int32_t num_blocks_ = 0;
  DeviceBuffer inv_freq_;        // the attention's rotary frequencies (MLA or GQA)
  int64_t index_rows_ = 0;       // tokens per indexer scoring pass (idx_scores rows)
  std::vector<bool> is_moe_;
  int64_t load_experts_ = 0;
  mutable ExpertLoad expert_load_;
  bool load_on_host_ = false;  // sharded: totals all-reduced into expert_load_
  std::map<int64_t, cudaGraphExec_t> graphs_;  // by batch size
  cudaGraph_t capturing_ = nullptr;
  std::vector<CudaWeight*> kv_b_weights_;  // given an f32 copy when the generic kernel runs
  int64_t fp8_max_k_ = 0;                   // widest input of an FP8 GEMM (activation buffers)
  int64_t fp8_moe_inter_ = 0;               // FP8 experts' inter (second activation quantisation)
  std::vector<char> host_a_, host_b_;       // host staging of the Gloo collectives
  std::vector<int32_t> token_table_host_;   // BeginStep's per-token table offsets
};

}  // namespace dsinfer::cuda_backend
