// The seam between a model program (written once, src/model) and a backend (CPU: src/backend_cpu,
// CUDA: src/backend_cuda). A backend provides weight storage, step scratch, the layer ops and the
// collectives; the program decides everything else (which ops, in what order, which weights,
// how a sharded layout splits and joins). As llama.cpp's deepseek2 graph over ggml backends.
//
// Invariants (see README.md)
// - Ops are enqueued in program order on the backend's one stream; a Tensor a program got from
//   Scratch() is valid until the next BeginStep or a ScratchRelease below it. Scratch is handed
//   out in call order from an arena (a stack), so the same sequence of calls gets the same
//   addresses (what CUDA graphs replay). Scratch rounds each piece up to kScratchAlign bytes.
// - Inputs are read-only unless an op says it may overwrite them (MlaAttention's q and kv).
// - Every op accepts zero rows (a rank whose share of a step is empty).
// - Under a sharded layout every rank calls the same collectives in the same order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "src/engine/model_runner.h"
#include "src/kv_cache/kv_cache_spec.h"
#include "src/model/step_input.h"
#include "src/model/tensor.h"
#include "src/model/weight_desc.h"
#include "src/sampling/sampler.h"

namespace dsinfer {

class WeightReader;

inline constexpr int64_t kScratchAlign = 256;
inline int64_t ScratchBytesOf(int64_t rows, int64_t cols, ElemType t) {
  const int64_t b = std::max<int64_t>(rows * cols, 1) * ElemBytes(t);
  return (b + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
}

// A weight in the backend's own storage and format (bf16, f32, FP8 kept with its block scales,
// packed for its kernels). The program only passes it back to ops.
class BackendWeight {
 public:
  virtual ~BackendWeight() = default;
  WeightRole role = WeightRole::kLinear;
  int64_t rows = 0, cols = 0;  // logical shape (experts: per expert [inter, hidden])
  int64_t bytes = 0;           // memory it takes
  int64_t fp8_bytes = 0;       // of which FP8 codes and scales kept as such
};

// MLA dimensions and scales of one model (per rank: heads are this rank's).
struct MlaParams {
  int64_t heads = 0, nope = 0, rope = 0, v = 0, kv_lora = 0;
  float eps = 1e-6f;
  float softmax_scale = 1.0f;
  float rope_attn_factor = 1.0f;
  std::vector<float> inv_freq;  // [rope / 2]
};

// The inputs of one layer's attention, after the program's projections. The backend chooses
// the absorbed or expanded form per sequence.
struct MlaInputs {
  Tensor q;   // [N, heads * (nope + rope)] f32, rope part not yet rotated; may be overwritten
  Tensor kv;  // [N, kv_lora + rope] f32: latent before kv_a_layernorm | k_pe before RoPE;
              // may be overwritten
  const BackendWeight* kv_a_norm = nullptr;  // [kv_lora]
  const BackendWeight* kv_b = nullptr;       // [heads * (nope + v), kv_lora] this rank's heads
  // DeepSeek Sparse Attention: [N, index_topk] i32 key positions of each token's sequence
  // (IndexerTopK's output, -1 padded); the token attends to those only. Empty: all (causal).
  Tensor topk;
};

// DeepSeek-V3.2's lightning indexer of one layer (kernels/cpu/dsa_indexer.h has the formulas).
struct IndexerParams {
  int64_t heads = 0, head_dim = 0, rope = 0, topk = 0;
  bool ue8m0 = false;            // power-of-two FP8 scales (quantization_config.scale_fmt)
  float eps = 1e-6f;             // k_norm's LayerNorm
  float rope_attn_factor = 1.0f;
  std::vector<float> inv_freq;   // the model's rotary frequencies [rope / 2]
};

struct IndexerInputs {
  Tensor q;  // [N, heads * head_dim] f32: q-LoRA latent · wq_b; may be overwritten
  Tensor k;  // [N, head_dim] f32: x · wk; may be overwritten
  Tensor w;  // [N, heads] f32: x · weights_proj
  const BackendWeight* k_norm = nullptr;       // LayerNorm weight [head_dim]
  const BackendWeight* k_norm_bias = nullptr;  // LayerNorm bias [head_dim]
};

// DeepSeek-V4's attention of one layer (kernels/cpu/v4_attention.h has the formulas). Its cache
// row per token (V4KvCacheSpec): [window K=V (head_dim) | compressor inputs kv | gate (2·cw) |
// compressed entry (head_dim) | indexer compressor inputs (4·index_head_dim) | compressed index
// key (index_head_dim)], every part f32; a compressed entry lives in the row of the token that
// closes its window.
struct V4AttnParams {
  int64_t heads = 0, head_dim = 0, rope_dim = 0;
  int64_t window = 0;       // sliding_window (the query's own token included)
  int64_t rate = 0;         // compression rate (0: sliding only)
  bool overlap = false;     // CSA: overlapping windows and the indexer
  int64_t index_heads = 0, index_dim = 0, index_topk = 0;
  int64_t row_width = 0;    // the cache row (V4KvCacheSpec)
  float eps = 1e-6f;        // q_b's unweighted RMSNorm and the compressors' norms
  float softmax_scale = 1.0f;
  std::vector<float> inv_freq;           // this layer's rotary (main or compress) [rope / 2]
  std::vector<float> compress_inv_freq;  // the compressed entries' and the indexer's [rope / 2]
};

struct V4AttnInputs {
  Tensor q;         // [N, heads * head_dim] f32, q_b(q_a_norm(...)) before its norm; overwritten
  Tensor kv;        // [N, head_dim] f32, kv_norm(wkv(x)) before RoPE; overwritten
  Tensor comp;      // [N, 2 * cw] f32: [wkv(x) | wgate(x)] (compressed layers)
  Tensor idx_comp;  // [N, 4 * index_dim] f32: the indexer compressor's [wkv(x) | wgate(x)] (CSA)
  Tensor idx_q;     // [N, index_heads * index_dim] f32 before RoPE (CSA); overwritten
  Tensor idx_w;     // [N, index_heads] f32: weights_proj(x) (CSA)
  const BackendWeight* sinks = nullptr;                           // [heads]
  const BackendWeight *comp_ape = nullptr, *comp_norm = nullptr;  // [rate, cw], [head_dim]
  const BackendWeight *idx_ape = nullptr, *idx_norm = nullptr;    // [rate, 2·index_dim], [..]
};

// DeepSeek-V4's hyper-connections (kernels/cpu/v4_mhc.h).
struct HyperParams {
  int64_t hc = 0, dim = 0, sinkhorn_iters = 20;
  float hc_eps = 1e-6f, norm_eps = 1e-6f;
};

// DeepSeek-V4's routing: sqrtsoftplus / sigmoid / softmax scores, top-k by score + bias or the
// hash table's experts, normalised and scaled.
struct V4RouterParams {
  int64_t n_experts = 0, top_k = 0;
  uint8_t scoring = 0;  // kernels/cpu/v4_moe.h V4RouterScoring
  float scale = 1.0f;
};

// Grouped-query attention dimensions of one model (dense families: qwen2, llama).
struct GqaParams {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float softmax_scale = 1.0f;   // head_dim^-0.5
  std::vector<float> inv_freq;  // [head_dim / 2]; rotary in HF's rotate_half layout
};

// DeepSeek's routing rule (kernels' MoeRoute twins): scores in f32, bias only for selection.
struct RouterParams {
  int64_t n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool sigmoid = false;           // else softmax scoring
  bool group_top2_sum = false;    // group score: sum of its top-2 (noaux_tc), else its max
  bool normalize = false;         // norm_topk_prob
  float scale = 1.0f;             // routed_scaling_factor
  bool scale_when_normalized = true;  // false: DeepSeek-V2 scales only un-normalised weights
};

// Reserve()'s argument: the largest shapes one step brings to the ops.
struct WorkspaceNeeds {
  int64_t scratch_bytes = 0;     // the program's own Scratch (ScratchBytesOf per piece)
  int64_t max_tokens = 0, max_logit_rows = 0, max_seqs = 0;
  int64_t max_positions = 0;     // context length (block tables)
  int64_t num_layers = 0, hidden = 0, vocab = 0;
  MlaParams mla;                 // this rank's attention (MLA families)
  GqaParams gqa;                 // this rank's attention (dense families)
  IndexerParams index;           // DeepSeek Sparse Attention's indexer (heads 0: none)
  int64_t max_mlp_inter = 0;     // widest dense or shared-expert MLP of this rank
  int64_t n_experts = 0, top_k = 0, moe_inter = 0;  // routed experts (n_experts 0: none)
};

class BackendOps {
 public:
  virtual ~BackendOps() = default;
  virtual const char* name() const = 0;  // "cpu" | "cuda"

  // ---- weights and cache ----------------------------------------------------------------
  // Creates a weight from its description, reading the checkpoint through `reader`.
  virtual absl::StatusOr<std::unique_ptr<BackendWeight>> LoadWeight(const WeightDesc& desc,
                                                                    WeightReader& reader) = 0;
  // The element type this backend stores the KV cache in.
  virtual KvDType kv_dtype() const = 0;
  // Bytes this backend could still give the KV cache (after weights and workspaces).
  virtual absl::StatusOr<int64_t> AvailableKvBytes() const = 0;
  virtual absl::Status AllocateKvCache(const KvCacheSpec& spec, int32_t num_blocks) = 0;
  virtual int32_t num_kv_blocks() const = 0;

  // ---- step memory -------------------------------------------------------------------------
  // Activation type the GEMM ops consume (f32 on the CPU: rounding happens in its kernels).
  virtual ElemType gemm_dtype() const = 0;
  // FP8 checkpoint weights are held as FP8 (else dequantised at load).
  virtual bool keeps_fp8() const = 0;
  // Validates what the backend itself limits (tokens, sequences per step) and uploads the
  // step's inputs; resets the scratch arena.
  virtual absl::Status BeginStep(const StepInput& step) = 0;
  virtual absl::StatusOr<Tensor> Scratch(int64_t rows, int64_t cols, ElemType dtype) = 0;
  // Scratch is a stack within a step: ScratchRelease(mark) frees what was handed out since
  // ScratchMark() returned mark (a layer's temporaries).
  virtual int64_t ScratchMark() const = 0;
  virtual void ScratchRelease(int64_t mark) = 0;
  // What the program will ask of the backend at most (the program's bound for the backend's step
  // limits): a backend with fixed device memory allocates its scratch and workspaces here,
  // after the weights and before the KV cache is sized.
  virtual absl::Status Reserve(const WorkspaceNeeds& needs) { return absl::OkStatus(); }
  // The high-water mark of scratch bytes since construction (tests check the bound with it).
  virtual int64_t scratch_peak() const = 0;
  // Step limits of backends with fixed workspaces (0: none).
  virtual int64_t max_step_tokens() const { return 0; }
  virtual int64_t max_step_seqs() const { return 0; }
  virtual int64_t max_logit_rows() const { return 0; }
  virtual absl::Status Zero(Tensor t) = 0;
  virtual absl::Status Add(Tensor dst, Tensor src) = 0;  // dst += src (f32)
  virtual absl::Status CopyToHost(Tensor src, void* dst) = 0;          // rows packed
  virtual absl::Status CopyFromHost(const void* src, Tensor dst) = 0;  // rows packed
  // dst[i] = src[rows[i]] (host indices), any dtype; dst[i] += src... for ScatterAddRows (f32).
  virtual absl::Status GatherRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) = 0;
  virtual absl::Status ScatterAddRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) = 0;

  // ---- layer ops ---------------------------------------------------------------------------
  // x[i] = table[token_i - vocab_begin] for the step's tokens in this rank's vocab rows, else 0.
  virtual absl::Status Embed(const BackendWeight& table, int64_t vocab_begin, Tensor x) = 0;
  // The same for host token ids (x.rows of them): the MTP module embeds the token after each
  // row's, which the step's tokens do not hold. A backend without it cannot run MTP.
  virtual absl::Status EmbedIds(const BackendWeight& table, int64_t vocab_begin,
                                absl::Span<const int32_t> ids, Tensor x) {
    return absl::UnimplementedError(absl::StrCat("embed ids (MTP): not on the ", name(),
                                                 " backend"));
  }
  // y (and y2 when given) = RMSNorm(x) * w, in their own dtypes.
  virtual absl::Status RmsNorm(Tensor x, const BackendWeight& w, float eps, Tensor y,
                               Tensor y2 = {}) = 0;
  // y (+)= x · wᵀ (HF [out, in] weights), f32 out.
  virtual absl::Status Linear(Tensor x, const BackendWeight& w, Tensor y, bool accumulate) = 0;
  // Appends the step's latent rows of `layer` to the cache and attends: out [N, heads * v] in
  // gemm_dtype().
  virtual absl::Status MlaAttention(int64_t layer, const MlaParams& p, const MlaInputs& in,
                                    Tensor out) = 0;
  // Appends the step's FP8 index keys of `layer` to the index cache (KvCacheSpec's second
  // component), scores every token against its sequence's keys up to its own position and writes
  // the min(topk, position + 1) best positions, ascending, -1 padded: topk [N, p.topk] i32.
  // A backend with it (and MlaAttention honouring MlaInputs::topk) says so; deepseek_v32 refuses
  // to load on one without.
  virtual bool has_sparse_attention() const { return false; }
  virtual absl::Status IndexerTopK(int64_t layer, const IndexerParams& p, const IndexerInputs& in,
                                   Tensor topk) {
    return absl::UnimplementedError(
        absl::StrCat("the ", name(), " backend has no DeepSeek Sparse Attention indexer"));
  }
  // Grouped-query attention (dense families): rotates q and k (pairs (i, i + head_dim / 2)) in
  // place, appends each token's [k | v] row to `layer`'s cache, and attends causally over the
  // sequence's cached rows: out [N, heads * head_dim] in gemm_dtype(). q [N, heads * head_dim],
  // k and v [N, kv_heads * head_dim], f32 (column windows of one projection allowed). A backend
  // without it says so (has_gqa_attention) and the dense program refuses to load on it.
  virtual bool has_gqa_attention() const { return false; }
  virtual absl::Status GqaAttention(int64_t layer, const GqaParams& p, Tensor q, Tensor k,
                                    Tensor v, Tensor out) {
    return absl::UnimplementedError(std::string("gqa attention: not on the ") + name() +
                                    " backend");
  }
  // y[r] += bias for every row (f32; a [n] vector weight). Projection biases (qwen2's q/k/v).
  virtual absl::Status AddBias(Tensor y, const BackendWeight& bias) {
    return absl::UnimplementedError(std::string("add bias: not on the ") + name() + " backend");
  }
  // ---- DeepSeek-V4 (backends without them refuse the family at load) ------------------
  virtual bool has_v4_ops() const { return false; }
  // Normalises q per head (unweighted RMSNorm) and rotates q and kv (the layer's rotary), appends
  // the step's rows of `layer` to the cache (closing compressor windows as tokens complete them),
  // and attends each token over its window, its compressed entries (CSA: the indexer's top-k)
  // and the sinks; out [N, heads * head_dim] f32 with its rope channels rotated back.
  virtual absl::Status V4Attention(int64_t layer, const V4AttnParams& p, const V4AttnInputs& in,
                                   Tensor out) {
    return absl::UnimplementedError(std::string("V4 attention: not on the ") + name() +
                                    " backend");
  }
  // streams [N, hc * dim] f32 -> collapsed [N, dim], post [N, hc], comb [N, hc * hc] (f32).
  virtual absl::Status HyperPre(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                                const BackendWeight& scale, const HyperParams& p,
                                Tensor collapsed, Tensor post, Tensor comb) {
    return absl::UnimplementedError("hyper-connections");
  }
  // streams = post · y + combᵀ · streams.
  virtual absl::Status HyperPost(Tensor y, Tensor post, Tensor comb, const HyperParams& p,
                                 Tensor streams) {
    return absl::UnimplementedError("hyper-connections");
  }
  virtual absl::Status HyperHead(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                                 const BackendWeight& scale, const HyperParams& p, Tensor out) {
    return absl::UnimplementedError("hyper-head");
  }
  // ids / weights [N, top_k] of x's rows, the step's tokens [first_token, first_token + N)
  // (a rank's token slice); hash layers (tid2eid given) take those tokens' experts. Counts the
  // routed tokens of `layer` in the expert load, as MoeRoute.
  virtual absl::Status V4Route(int64_t layer, Tensor x, int64_t first_token,
                               const BackendWeight& gate, const BackendWeight* bias,
                               const BackendWeight* tid2eid, const V4RouterParams& p, Tensor ids,
                               Tensor weights) {
    return absl::UnimplementedError("V4 routing");
  }
  // out = Σ_k weights[:, k] · expert_{ids[:, k]}(x) (experts given; ids it does not hold or -1
  // skipped, ascending id) + shared(x) (shared given), with V4's clipped SwiGLU (swiglu_limit,
  // routed and shared experts alike). Sharded layouts call it for either part alone.
  virtual absl::Status V4Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight* experts,
                             const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                             float swiglu_limit, Tensor out) {
    return absl::UnimplementedError("V4 MoE");
  }
  // out (+)= SwiGLU MLP of x: down(silu(gate(x)) * up(x)); gate_up holds [gate; up].
  virtual absl::Status Mlp(Tensor x, const BackendWeight& gate_up, const BackendWeight& down,
                           Tensor out, bool accumulate) = 0;
  // Top-k experts of each row: ids [N, top_k] i32, weights [N, top_k] f32. Counts the routed
  // tokens of `layer` in the backend's expert load.
  virtual absl::Status MoeRoute(int64_t layer, Tensor x, const BackendWeight& gate,
                                const BackendWeight* bias, const RouterParams& p, Tensor ids,
                                Tensor weights) = 0;
  // out (+)= Σ_k weights[:, k] · expert_{ids[:, k]}(x) (+ shared(x)); ids are global expert ids
  // the weight holds, or -1 (skipped); each row sums its experts in ascending id.
  virtual absl::Status Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight& experts,
                           const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                           Tensor out, bool accumulate) = 0;
  // out[r] = x[step.logit_rows[first + r]] for r < out.rows.
  virtual absl::Status SelectLogitRows(Tensor x, int64_t first, Tensor out) = 0;

  // ---- collectives (no-ops on a single rank) -----------------------------------------------
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  virtual absl::Status AllReduce(Tensor t) = 0;  // f32, summed over ranks
  // out = rank-ordered concatenation of each rank's rows (rows_per_rank[r] rows from rank r).
  virtual absl::Status AllGatherRows(Tensor local, absl::Span<const int64_t> rows_per_rank,
                                     Tensor out) = 0;
  // out[:, cols of rank r] = rank r's local [rows, cols_per_rank[r]].
  virtual absl::Status AllGatherCols(Tensor local, absl::Span<const int64_t> cols_per_rank,
                                     Tensor out) = 0;
  // Row blocks: send_rows[d] rows of `send` (in rank order) go to rank d; recv_rows[s] rows
  // from rank s land in `recv` (in rank order).
  virtual absl::Status AllToAllRows(Tensor send, absl::Span<const int64_t> send_rows,
                                    Tensor recv, absl::Span<const int64_t> recv_rows) = 0;
  // Host integers: recv[s] = what rank s put in its send[rank()].
  virtual absl::Status ExchangeCounts(absl::Span<const int64_t> send, absl::Span<int64_t> recv) = 0;
  // Expert load: counters for the MoE layers (is_moe[layer]) of n_experts each; MoeRoute counts
  // the tokens it routes, ReduceExpertLoad adds every rank's counts of this step (sharded
  // layouts route token slices).
  virtual void InitExpertLoad(const std::vector<bool>& is_moe, int64_t n_experts) = 0;
  virtual absl::Status ReduceExpertLoad() = 0;
  virtual const ExpertLoad& expert_load() const = 0;

  // ---- outputs -----------------------------------------------------------------------------
  // tokens[i] = the choice for row rows[i] of logits [R, vocab] (f32); logits rows may be
  // penalised in place.
  virtual absl::Status Sample(Tensor logits, absl::Span<const int32_t> rows,
                              absl::Span<const SamplingRow> params, int32_t* tokens) = 0;
  // Log-softmax of logits row rows[i] at chosen[i], and its top_n tokens (before penalties).
  virtual absl::Status Logprobs(Tensor logits, absl::Span<const int32_t> rows,
                                absl::Span<const int32_t> chosen, int32_t top_n,
                                std::vector<SequenceResult*> out) = 0;

  // ---- replay of repeated steps (CUDA graphs); a backend without it answers -1 / false ------
  // Whether decode steps can be replayed at all (what a warm-up prepares).
  virtual bool can_replay() const { return false; }
  // Forgets the expert load counted so far (after a warm-up's dummy steps).
  virtual void ResetExpertLoad() {}
  // A key for steps whose ops and scratch layout repeat exactly (decode steps of one batch size).
  virtual int64_t ReplayKey(const StepInput& step) const { return -1; }
  virtual bool HasReplay(int64_t key) const { return false; }
  virtual absl::Status BeginCapture(int64_t key) { return absl::UnimplementedError("replay"); }
  virtual absl::Status EndCapture(int64_t key) { return absl::UnimplementedError("replay"); }
  virtual absl::Status Replay(int64_t key) { return absl::UnimplementedError("replay"); }
  // Waits for the step's work (copies to the host have completed when this returns).
  virtual absl::Status Sync() { return absl::OkStatus(); }
};

}  // namespace dsinfer
