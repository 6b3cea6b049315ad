// CudaExecutor: set-up (weights, workspaces, KV cache), per-step inputs and plan, logits.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/rmsnorm.h"
#include "src/backend_cuda/cuda_executor_impl.h"
#include "src/core/status_macros.h"
#include "src/kv_cache/block_pool.h"
#include "src/model/attention_scales.h"

namespace dsinfer {

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

absl::StatusOr<std::unique_ptr<Executor>> MakeCudaExecutor(const std::string& model_dir,
                                                           const CudaExecutorOptions& options) {
  ASSIGN_OR_RETURN(auto ex, cuda_backend::CudaExecutor::Create(model_dir, options));
  return std::unique_ptr<Executor>(std::move(ex));
}

namespace cuda_backend {
namespace {

constexpr int64_t kBlock = kKvBlockSize;
static_assert(kKvBlockSize == 64, "layer_cache() and the attention plan assume 64-token blocks");

absl::Status CheckSupported(const ModelConfig& c) {
  auto unsupported = [](const std::string& what) {
    return absl::UnimplementedError(absl::StrCat("CUDA backend: ", what));
  };
  if (c.n_routed_experts > cuda::kMoeMaxExperts)
    return unsupported(
        absl::StrCat("n_routed_experts ", c.n_routed_experts, " > ", cuda::kMoeMaxExperts));
  if (c.num_experts_per_tok > cuda::kMoeMaxTopK)
    return unsupported(
        absl::StrCat("num_experts_per_tok ", c.num_experts_per_tok, " > ", cuda::kMoeMaxTopK));
  if (c.n_group > 32) return unsupported("n_group > 32");
  if (c.hidden_size % 8 || c.moe_intermediate_size % 8)
    return unsupported("hidden_size and moe_intermediate_size must be multiples of 8");
  if (c.kv_lora_rank > 1024 || c.qk_rope_head_dim % 2)
    return unsupported("kv_lora_rank <= 1024 and an even qk_rope_head_dim are required");
  return absl::OkStatus();
}

}  // namespace

absl::Status StepArena::Init(const size_t (&bytes)[kNumRegions]) {
  size_t total = 0;
  for (int r = 0; r < kNumRegions; ++r) {
    off_[r] = total;
    size_[r] = bytes[r];
    total += (bytes[r] + 255) & ~size_t{255};
  }
  RETURN_IF_ERROR(host_.Allocate(total));
  return dev_.Allocate(total);
}

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(
    const std::string& model_dir, const CudaExecutorOptions& options) {
  const int devices = CudaDeviceCount();
  if (devices == 0) {
    return absl::FailedPreconditionError(
        "no CUDA device: the CUDA backend needs an NVIDIA GPU and driver (use --device cpu)");
  }
  if (options.device < 0 || options.device >= devices) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", options.device, " does not exist (", devices, " visible)"));
  }
  if (options.max_batched_tokens < 1 || options.max_seqs < 1 || options.max_logit_rows < 1 ||
      options.chunk_tokens < 1 ||
      !(options.kv_cache_fraction > 0 && options.kv_cache_fraction <= 1))
    return absl::InvalidArgumentError("CUDA executor options out of range");
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  RETURN_IF_ERROR(CheckSupported(config));
  ASSIGN_OR_RETURN(auto store, WeightStore::Open(model_dir, options.progress));
  store->SetFp8BlockSize(config.fp8.block_n, config.fp8.block_k);
  std::unique_ptr<CudaExecutor> ex(new CudaExecutor(std::move(config), options));
  RETURN_IF_ERROR(ex->Init(*store));
  store->FinishProgress();
  return ex;
}

CudaExecutor::~CudaExecutor() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& [batch, exec] : decode_graphs_)
    if (exec) cudaGraphExecDestroy(exec);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

absl::Status CudaExecutor::Init(const WeightStore& store) {
  const ModelConfig& c = config_;
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DSINFER_BLAS_RETURN_IF_ERROR(cublasCreate(&blas_));
  DSINFER_BLAS_RETURN_IF_ERROR(cublasSetStream(blas_, stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, opts_.device));
  width_ = c.kv_lora_rank + c.qk_rope_head_dim;
  tc_attention_ =
      opts_.tensor_core_attention &&
      cuda::MlaTensorCoreSupported(c.kv_lora_rank, c.qk_rope_head_dim, kBlock, opts_.device);
  if (tc_attention_) DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttentionPrepare());

  ASSIGN_OR_RETURN(w_, UploadWeights(c, store, /*kv_b_f32=*/!tc_attention_));

  // RoPE and softmax scale exactly as the CPU model.
  const AttentionScales scales = MlaAttentionScales(c);
  RETURN_IF_ERROR(inv_freq_.Allocate(scales.inv_freq.size() * 4));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpy(inv_freq_.get(), scales.inv_freq.data(),
                                          scales.inv_freq.size() * 4, cudaMemcpyHostToDevice));
  rope_attn_factor_ = scales.rope_attn_factor;
  softmax_scale_ = scales.softmax_scale;

  RETURN_IF_ERROR(AllocateWorkspace());
  DSINFER_BLAS_RETURN_IF_ERROR(cublasSetWorkspace(blas_, ws_.blas.get(), ws_.blas.bytes()));

  // The KV cache takes what is left.
  const int64_t block_bytes = c.num_hidden_layers * kBlock * width_ * 2;
  int64_t blocks = opts_.num_kv_blocks;
  if (blocks <= 0) {
    size_t free_b = 0, total_b = 0;
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
    blocks =
        static_cast<int64_t>(static_cast<double>(free_b) * opts_.kv_cache_fraction) / block_bytes;
    blocks = std::min<int64_t>(blocks, INT32_MAX / kBlock);
  }
  if (blocks < 1) return absl::ResourceExhaustedError("no GPU memory left for the KV cache");
  num_blocks_ = static_cast<int32_t>(blocks);
  RETURN_IF_ERROR(cache_.Allocate(static_cast<size_t>(blocks * block_bytes)));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemset(cache_.get(), 0, cache_.bytes()));

  expert_load_.tokens.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (c.IsMoeLayer(l)) expert_load_.tokens[l].assign(c.n_routed_experts, 0);
  return absl::OkStatus();
}

absl::Status CudaExecutor::AllocateWorkspace() {
  const ModelConfig& c = config_;
  const int64_t T = opts_.max_batched_tokens, C = std::min(opts_.chunk_tokens, T);
  const int64_t D = c.hidden_size, H = c.num_attention_heads, kvl = c.kv_lora_rank;
  const int64_t qk = c.qk_head_dim(), aw = w_->layers[0].attn.qa_width + width_;
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  bool any_moe = false, any_dense = false;
  for (const DeviceLayer& L : w_->layers) (L.is_moe ? any_moe : any_dense) = true;
  max_inter_ = 0;
  if (any_dense) max_inter_ = c.intermediate_size;
  if (any_moe && c.n_shared_experts > 0)
    max_inter_ = std::max(max_inter_, c.n_shared_experts * c.moe_intermediate_size);
  max_partials_ = 4 * static_cast<int64_t>(num_sms_);
  const int64_t max_tiles = (T * H + 15) / 16 + opts_.max_seqs;
  max_work_ = max_tiles + max_partials_;
  max_combine_ = max_tiles;

  auto f32 = [](DeviceBuffer* b, int64_t n) { return b->Allocate(static_cast<size_t>(n) * 4); };
  auto b16 = [](DeviceBuffer* b, int64_t n) { return b->Allocate(static_cast<size_t>(n) * 2); };
  RETURN_IF_ERROR(f32(&ws_.x, T * D));
  RETURN_IF_ERROR(b16(&ws_.xn_bf16, T * D));
  RETURN_IF_ERROR(f32(&ws_.qkv_a, T * aw));
  if (c.q_lora_rank > 0) {
    RETURN_IF_ERROR(b16(&ws_.qn, T * c.q_lora_rank));
    RETURN_IF_ERROR(f32(&ws_.q, T * H * qk));
  }
  if (tc_attention_) {
    RETURN_IF_ERROR(b16(&ws_.q_nope, T * H * c.qk_nope_head_dim));
    RETURN_IF_ERROR(b16(&ws_.q_attn, T * H * width_));
    RETURN_IF_ERROR(b16(&ws_.o_lat, T * H * kvl));
  } else {
    RETURN_IF_ERROR(f32(&ws_.q_attn_f32, T * H * width_));
    RETURN_IF_ERROR(f32(&ws_.o_lat_f32, T * H * kvl));
    RETURN_IF_ERROR(f32(&ws_.attn_f32, T * H * c.v_head_dim));
  }
  RETURN_IF_ERROR(b16(&ws_.attn, T * H * c.v_head_dim));
  RETURN_IF_ERROR(f32(&ws_.partial_out, max_partials_ * cuda::MlaMaxTileRows() * kvl));
  RETURN_IF_ERROR(f32(&ws_.partial_lse, max_partials_ * cuda::MlaMaxTileRows()));
  if (max_inter_ > 0) {
    RETURN_IF_ERROR(f32(&ws_.gu, C * 2 * max_inter_));
    RETURN_IF_ERROR(b16(&ws_.act, C * max_inter_));
  }
  if (any_moe) {
    RETURN_IF_ERROR(f32(&ws_.xn_f32, T * D));
    RETURN_IF_ERROR(f32(&ws_.router, T * E));
    RETURN_IF_ERROR(ws_.topk_ids.Allocate(static_cast<size_t>(T * K) * 4));
    RETURN_IF_ERROR(f32(&ws_.topk_w, T * K));
    RETURN_IF_ERROR(ws_.slot_of.Allocate(static_cast<size_t>(C * K) * 4));
    RETURN_IF_ERROR(ws_.row_token.Allocate(static_cast<size_t>(C * K) * 4));
    RETURN_IF_ERROR(ws_.expert_offsets.Allocate(static_cast<size_t>(E + 1) * 4));
    RETURN_IF_ERROR(ws_.tile_offsets.Allocate(static_cast<size_t>(E + 1) * 4));
    RETURN_IF_ERROR(b16(&ws_.moe_act, C * K * c.moe_intermediate_size));
    RETURN_IF_ERROR(f32(&ws_.moe_y, C * K * D));
    if (c.n_shared_experts > 0) RETURN_IF_ERROR(f32(&ws_.shared_out, C * D));
    RETURN_IF_ERROR(ws_.expert_load.Allocate(static_cast<size_t>(c.num_hidden_layers * E) * 8));
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemset(ws_.expert_load.get(), 0, ws_.expert_load.bytes()));
  }
  const int64_t R = std::min(opts_.max_logit_rows, T);
  RETURN_IF_ERROR(b16(&ws_.final_x, R * D));
  RETURN_IF_ERROR(f32(&ws_.logits, R * c.vocab_size));
  RETURN_IF_ERROR(host_logits_.Allocate(static_cast<size_t>(R * c.vocab_size) * 4));
  RETURN_IF_ERROR(ws_.blas.Allocate(32u << 20));

  // Step inputs: token arrays, sequence descriptors, attention plan, block tables.
  const int64_t max_table = opts_.max_seqs * ((c.max_position_embeddings + kBlock - 1) / kBlock);
  const size_t T4 = static_cast<size_t>(T) * 4;
  const size_t regions[StepArena::kNumRegions] = {
      2 * 4,
      T4,
      T4,
      T4,
      T4,
      static_cast<size_t>(opts_.max_seqs) * sizeof(cuda::MlaSeqDesc),
      static_cast<size_t>(max_work_) * sizeof(cuda::MlaWorkItem),
      static_cast<size_t>(max_combine_) * sizeof(cuda::MlaCombineItem),
      static_cast<size_t>(max_table) * 4};
  return arena_.Init(regions);
}

absl::Status CudaExecutor::PrepareStep(absl::Span<const SequenceInput> seqs) {
  const ModelConfig& c = config_;
  if (seqs.empty()) return absl::InvalidArgumentError("forward: empty batch");
  if (static_cast<int64_t>(seqs.size()) > opts_.max_seqs) {
    return absl::InvalidArgumentError(
        absl::StrCat("forward: ", seqs.size(), " sequences exceed the CUDA executor's max_seqs ",
                     opts_.max_seqs));
  }
  h_tokens_.clear();
  h_positions_.clear();
  h_slots_.clear();
  h_logit_rows_.clear();
  h_tables_.clear();
  h_n_new_.clear();
  h_start_.clear();
  h_seqs_.clear();
  const int64_t H = c.num_attention_heads;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SequenceInput& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    if (n == 0) return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": no tokens"));
    if (in.start_pos < 0 || in.start_pos + n > c.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": positions up to ", in.start_pos + n,
                       " exceed max_position_embeddings ", c.max_position_embeddings));
    }
    const int64_t nb = BlocksForTokens(in.start_pos + n);
    if (static_cast<int64_t>(in.block_table.size()) < nb) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": block table holds ",
                                                     in.block_table.size(), " blocks, too few for ",
                                                     in.start_pos + n, " tokens"));
    }
    for (int32_t b : in.block_table)
      if (b < 0 || b >= num_blocks_)
        return absl::InvalidArgumentError(
            absl::StrCat("sequence ", s, ": block id ", b, " out of range"));
    for (int32_t t : in.tokens)
      if (t < 0 || t >= c.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat(
            "sequence ", s, ": token id ", t, " outside the vocabulary [0, ", c.vocab_size, ")"));
    const int64_t off = static_cast<int64_t>(h_tokens_.size());
    if (off + n > opts_.max_batched_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("forward: the step's tokens exceed the CUDA executor's max_batched_tokens ",
                       opts_.max_batched_tokens));
    }
    h_seqs_.push_back({static_cast<int32_t>(off * H), static_cast<int32_t>(n * H),
                       static_cast<int32_t>(in.start_pos), static_cast<int32_t>(h_tables_.size())});
    h_tables_.insert(h_tables_.end(), in.block_table.begin(), in.block_table.begin() + nb);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = in.start_pos + i;
      h_tokens_.push_back(in.tokens[i]);
      h_positions_.push_back(static_cast<int32_t>(pos));
      h_slots_.push_back(
          static_cast<int32_t>(in.block_table[pos / kBlock] * kBlock + pos % kBlock));
      if (in.all_logits || i == n - 1) h_logit_rows_.push_back(static_cast<int32_t>(off + i));
    }
    h_n_new_.push_back(static_cast<int32_t>(n));
    h_start_.push_back(static_cast<int32_t>(in.start_pos));
  }
  const cuda::MlaPlan plan =
      cuda::MakeMlaPlan({.heads = H,
                         .kv_lora = c.kv_lora_rank,
                         .rope = c.qk_rope_head_dim,
                         .block_size = kBlock,
                         .num_sms = num_sms_,
                         .max_partials = max_partials_,
                         .tensor_core = tc_attention_,
                         .split_tokens = opts_.attention_split_tokens},
                        h_n_new_.data(), h_start_.data(), static_cast<int64_t>(seqs.size()));
  if (static_cast<int64_t>(plan.work.size()) > max_work_ ||
      static_cast<int64_t>(plan.combine.size()) > max_combine_)
    return absl::InternalError("attention plan exceeds its preallocated capacity");

  step_ = StepView{};
  step_.num_tokens = static_cast<int64_t>(h_tokens_.size());
  step_.num_seqs = static_cast<int64_t>(seqs.size());
  step_.num_logit_rows = static_cast<int64_t>(h_logit_rows_.size());
  step_.all_decode = step_.num_tokens == step_.num_seqs;
  step_.num_work = static_cast<int32_t>(plan.work.size());
  step_.num_combine = static_cast<int32_t>(plan.combine.size());
  step_.work_grid = step_.num_work;
  step_.combine_grid = step_.num_combine;
  step_.kernel = plan.kernel;
  step_.tile_rows = plan.tile_rows;
  const int32_t counts[2] = {step_.num_work, step_.num_combine};
  cudaError_t err = cudaSuccess;
  using A = StepArena;
  const bool fits =
      arena_.Put(A::kCounts, counts, 2, stream_, &err) &&
      arena_.Put(A::kTokens, h_tokens_.data(), h_tokens_.size(), stream_, &err) &&
      arena_.Put(A::kPositions, h_positions_.data(), h_positions_.size(), stream_, &err) &&
      arena_.Put(A::kSlots, h_slots_.data(), h_slots_.size(), stream_, &err) &&
      arena_.Put(A::kLogitRows, h_logit_rows_.data(), h_logit_rows_.size(), stream_, &err) &&
      arena_.Put(A::kSeqs, h_seqs_.data(), h_seqs_.size(), stream_, &err) &&
      arena_.Put(A::kWork, plan.work.data(), plan.work.size(), stream_, &err) &&
      arena_.Put(A::kCombine, plan.combine.data(), plan.combine.size(), stream_, &err) &&
      arena_.Put(A::kTables, h_tables_.data(), h_tables_.size(), stream_, &err);
  if (!fits) return absl::InternalError("step inputs exceed their preallocated buffers");
  DSINFER_CUDA_RETURN_IF_ERROR(err);
  step_.counts = arena_.dev<int32_t>(A::kCounts);
  step_.tokens = arena_.dev<int32_t>(A::kTokens);
  step_.positions = arena_.dev<int32_t>(A::kPositions);
  step_.slots = arena_.dev<int32_t>(A::kSlots);
  step_.logit_rows = arena_.dev<int32_t>(A::kLogitRows);
  step_.seqs = arena_.dev<cuda::MlaSeqDesc>(A::kSeqs);
  step_.work = arena_.dev<cuda::MlaWorkItem>(A::kWork);
  step_.combine = arena_.dev<cuda::MlaCombineItem>(A::kCombine);
  step_.tables = arena_.dev<int32_t>(A::kTables);
  return absl::OkStatus();
}

absl::Status CudaExecutor::RunLayers() {
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::EmbeddingGather({.tokens = step_.tokens,
                                                      .table = w_->embed.as<__nv_bfloat16>(),
                                                      .out = ws_.x.as<float>(),
                                                      .rows = step_.num_tokens,
                                                      .dim = config_.hidden_size},
                                                     stream_));
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    RETURN_IF_ERROR(Attention(l));
    RETURN_IF_ERROR(FeedForward(l));
  }
  return absl::OkStatus();
}

absl::Status CudaExecutor::Forward(absl::Span<const SequenceInput> seqs,
                                   std::vector<float>* logits) {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  RETURN_IF_ERROR(PrepareStep(seqs));
  // Decode steps: one CUDA graph per batch size. Its attention grids are bounds that hold for
  // every plan of that batch (work items <= tiles + CTAs, see MakeMlaPlan), the counts are read
  // on the device, and every other input sits at a fixed address.
  const int64_t B = step_.num_seqs;
  const int64_t row_chunk = std::min(opts_.max_logit_rows, opts_.max_batched_tokens);
  if (opts_.cuda_graphs && !graphs_disabled_ && step_.all_decode && B <= row_chunk &&
      opts_.attention_split_tokens == 0) {
    const int64_t heads = config_.num_attention_heads;
    const int64_t tiles = B * ((heads + step_.tile_rows - 1) / step_.tile_rows);
    const int64_t ctas = step_.kernel == cuda::MlaKernel::kTensorCore
                             ? num_sms_
                             : std::max(1, num_sms_ * 8 / step_.tile_rows);
    const int64_t work_bound = std::min(max_work_, tiles + ctas);
    if (step_.num_work <= work_bound && step_.num_combine <= tiles) {
      // The first step of a batch size runs eagerly (kernels loaded, cuBLAS heuristics cached),
      // the second captures the graph, later ones replay it.
      cudaGraphExec_t& exec = decode_graphs_[B];
      const bool seen = !decode_seen_.insert(B).second;
      if (!exec && seen) {
        step_.work_grid = static_cast<int32_t>(work_bound);
        step_.combine_grid = static_cast<int32_t>(tiles);
        if (!CaptureDecodeGraph(&exec).ok()) graphs_disabled_ = true;  // eager from now on
        step_.work_grid = step_.num_work;
        step_.combine_grid = step_.num_combine;
      }
      if (exec) {
        DSINFER_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, stream_));
        return CopyLogits(0, B, logits);
      }
    }
  }
  RETURN_IF_ERROR(RunLayers());
  return ComputeLogits(logits);
}

absl::Status CudaExecutor::CaptureDecodeGraph(cudaGraphExec_t* exec) {
  *exec = nullptr;
  // Relaxed: library calls that are merely capture-unsafe (lazy initialisation) do not
  // invalidate the capture; nothing here allocates or synchronises.
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  absl::Status st = RunLayers();
  if (st.ok()) st = LmHead(0, step_.num_logit_rows);
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
  if (st.ok() && end != cudaSuccess) st = CudaError(end, "cudaStreamEndCapture");
  if (st.ok()) {
    const cudaError_t inst = cudaGraphInstantiate(exec, graph, 0);
    if (inst != cudaSuccess) {
      *exec = nullptr;
      st = CudaError(inst, "cudaGraphInstantiate");
    }
  }
  if (graph) cudaGraphDestroy(graph);
  if (!st.ok()) cudaGetLastError();  // clear a capture error before going on eagerly
  return st;
}

absl::Status CudaExecutor::LmHead(int64_t r0, int64_t rows) {
  const int64_t V = config_.vocab_size, D = config_.hidden_size;
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::RmsNorm({.x = ws_.x.as<float>(),
                                              .residual = nullptr,
                                              .row_index = step_.logit_rows + r0,
                                              .w = w_->final_norm.as<float>(),
                                              .y_f32 = nullptr,
                                              .y_bf16 = ws_.final_x.as<__nv_bfloat16>(),
                                              .rows = rows,
                                              .dim = D,
                                              .eps = static_cast<float>(config_.rms_norm_eps)},
                                             stream_));
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = ws_.final_x.get(),
                                                  .w = w_->lm_head,
                                                  .y = ws_.logits.get(),
                                                  .m = rows,
                                                  .n = V,
                                                  .k = D}));
  return absl::OkStatus();
}

absl::Status CudaExecutor::CopyLogits(int64_t r0, int64_t rows, std::vector<float>* logits) {
  const int64_t V = config_.vocab_size;
  const size_t bytes = static_cast<size_t>(rows * V) * 4;
  if (r0 == 0) logits->resize(static_cast<size_t>(step_.num_logit_rows * V));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host_logits_.as<float>(), ws_.logits.get(), bytes,
                                               cudaMemcpyDeviceToHost, stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  std::memcpy(logits->data() + r0 * V, host_logits_.as<float>(), bytes);
  return absl::OkStatus();
}

absl::Status CudaExecutor::ComputeLogits(std::vector<float>* logits) {
  const int64_t R = step_.num_logit_rows;
  const int64_t chunk = std::min(opts_.max_logit_rows, opts_.max_batched_tokens);
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    const int64_t rows = std::min(chunk, R - r0);
    RETURN_IF_ERROR(LmHead(r0, rows));
    RETURN_IF_ERROR(CopyLogits(r0, rows, logits));
  }
  return absl::OkStatus();
}

const ExpertLoad& CudaExecutor::expert_load() const {
  const int64_t E = config_.n_routed_experts, L = config_.num_hidden_layers;
  if (ws_.expert_load.empty()) return expert_load_;
  std::vector<int64_t> host(static_cast<size_t>(L * E));
  if (cudaMemcpyAsync(host.data(), ws_.expert_load.get(), host.size() * 8, cudaMemcpyDeviceToHost,
                      stream_) != cudaSuccess ||
      cudaStreamSynchronize(stream_) != cudaSuccess) {
    cudaGetLastError();
    return expert_load_;  // last known counts
  }
  for (int64_t l = 0; l < L; ++l)
    if (!expert_load_.tokens[l].empty())
      std::copy(host.begin() + l * E, host.begin() + (l + 1) * E, expert_load_.tokens[l].begin());
  return expert_load_;
}

}  // namespace cuda_backend
}  // namespace dsinfer
