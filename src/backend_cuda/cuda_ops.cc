// CudaOps: set-up, workspaces and scratch, per-step inputs and the attention plan, replay of
// decode steps as CUDA graphs, collectives (host-staged over the Gloo communicator), and the
// outputs (sampling and logprobs on the GPU; only ids and a few floats cross to the host).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/logprobs.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/sampling.h"
#include "src/backend_cuda/cuda_backend.h"
#include "src/core/status_macros.h"
#ifdef DSINFER_HAVE_NCCL
#include "src/comm/nccl_communicator.h"
#endif

namespace dsinfer {

int CudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

absl::StatusOr<std::unique_ptr<BackendOps>> MakeCudaOps(const CudaOpsOptions& options) {
  ASSIGN_OR_RETURN(auto ops, cuda_backend::CudaOps::Create(options));
  return std::unique_ptr<BackendOps>(std::move(ops));
}

namespace cuda_backend {

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

absl::StatusOr<std::unique_ptr<CudaOps>> CudaOps::Create(const CudaOpsOptions& o) {
  const int devices = CudaDeviceCount();
  if (devices == 0) {
    return absl::FailedPreconditionError(
        "no CUDA device: the CUDA backend needs an NVIDIA GPU and driver (use --device cpu)");
  }
  if (o.device < 0) return absl::InvalidArgumentError("CUDA device must be >= 0");
  if (o.max_batched_tokens < 1 || o.max_seqs < 1 || o.max_logit_rows < 1 || o.chunk_tokens < 1)
    return absl::InvalidArgumentError("CUDA backend options out of range");
  std::unique_ptr<CudaOps> ops(new CudaOps(o));
  ops->opts_.device = o.device % devices;  // ranks of one node share the GPUs it has
  ops->comm_ = o.comm;
  RETURN_IF_ERROR(ops->Init());
  return ops;
}

absl::Status CudaOps::Init() {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DSINFER_BLAS_RETURN_IF_ERROR(cublasCreate(&blas_));
  DSINFER_BLAS_RETURN_IF_ERROR(cublasSetStream(blas_, stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&num_sms_, cudaDevAttrMultiProcessorCount, opts_.device));
  return MaybeStartNccl();
}

absl::Status CudaOps::MaybeStartNccl() {
#ifdef DSINFER_HAVE_NCCL
  // Every rank of the node on a GPU of its own: collectives run on the device. (Decided from
  // the same numbers on every rank, so they all join or none does.)
  if (comm_ != nullptr && CudaDeviceCount() >= opts_.ranks_on_node) {
    NcclCommunicatorOptions no;
    no.stream = stream_;
    ASSIGN_OR_RETURN(auto nccl, CreateNcclCommunicator(*comm_, opts_.device, no));
    nccl_ = std::move(nccl);
  }
#endif
  return absl::OkStatus();
}

CudaOps::~CudaOps() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (auto& [key, exec] : graphs_)
    if (exec) cudaGraphExecDestroy(exec);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

absl::Status CudaOps::Reserve(const WorkspaceNeeds& n) {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  needs_ = n;
  const MlaParams& m = n.mla;
  const int64_t T = n.max_tokens, C = std::min(opts_.chunk_tokens, T), D = n.hidden;
  const int64_t H = m.heads, kvl = m.kv_lora, width = kvl + m.rope;
  tc_attention_ = opts_.tensor_core_attention &&
                  cuda::MlaTensorCoreSupported(kvl, m.rope, 64, opts_.device);
  if (tc_attention_) DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttentionPrepare());
  auto f32 = [](DeviceBuffer* b, int64_t k) { return b->Allocate(static_cast<size_t>(k) * 4); };
  auto b16 = [](DeviceBuffer* b, int64_t k) { return b->Allocate(static_cast<size_t>(k) * 2); };
  if (tc_attention_) {
    RETURN_IF_ERROR(b16(&ws_.q_nope, T * H * m.nope));
    RETURN_IF_ERROR(b16(&ws_.q_attn, T * H * width));
    RETURN_IF_ERROR(b16(&ws_.o_lat, T * H * kvl));
  } else {
    RETURN_IF_ERROR(f32(&ws_.q_attn_f32, T * H * width));
    RETURN_IF_ERROR(f32(&ws_.o_lat_f32, T * H * kvl));
    RETURN_IF_ERROR(f32(&ws_.attn_f32, T * H * m.v));
    // The generic kernel's absorption runs in f32: kv_b in f32 too (its bf16 values).
    for (CudaWeight* w : kv_b_weights_) {
      const int64_t count = w->rows * w->cols;
      std::vector<uint16_t> h16(count);
      DSINFER_CUDA_RETURN_IF_ERROR(
          cudaMemcpy(h16.data(), w->data.get(), count * 2, cudaMemcpyDeviceToHost));
      std::vector<float> h32(count);
      for (int64_t i = 0; i < count; ++i) {
        const uint32_t u = static_cast<uint32_t>(h16[i]) << 16;
        std::memcpy(&h32[i], &u, 4);
      }
      RETURN_IF_ERROR(w->data2.Allocate(count * 4));
      DSINFER_CUDA_RETURN_IF_ERROR(
          cudaMemcpy(w->data2.get(), h32.data(), count * 4, cudaMemcpyHostToDevice));
      w->bytes += count * 4;
    }
  }
  max_partials_ = 4 * static_cast<int64_t>(num_sms_);
  const int64_t max_tiles = (T * H + 15) / 16 + n.max_seqs;
  max_work_ = max_tiles + max_partials_;
  max_combine_ = max_tiles;
  RETURN_IF_ERROR(f32(&ws_.partial_out, max_partials_ * cuda::MlaMaxTileRows() * kvl));
  RETURN_IF_ERROR(f32(&ws_.partial_lse, max_partials_ * cuda::MlaMaxTileRows()));
  const int64_t inter = std::max(n.max_mlp_inter, int64_t{1});
  RETURN_IF_ERROR(f32(&ws_.gu, C * 2 * inter));
  RETURN_IF_ERROR(b16(&ws_.act, C * inter));
  RETURN_IF_ERROR(b16(&ws_.x_bf16, T * D));
  if (n.n_experts > 0) {
    const int64_t E = n.n_experts, K = n.top_k, I = n.moe_inter;
    RETURN_IF_ERROR(f32(&ws_.router, T * E));
    RETURN_IF_ERROR(ws_.slot_of.Allocate(static_cast<size_t>(C * K) * 4));
    RETURN_IF_ERROR(ws_.row_token.Allocate(static_cast<size_t>(C * K) * 4));
    RETURN_IF_ERROR(ws_.expert_offsets.Allocate(static_cast<size_t>(E + 1) * 4));
    RETURN_IF_ERROR(ws_.tile_offsets.Allocate(static_cast<size_t>(E + 1) * 4));
    RETURN_IF_ERROR(b16(&ws_.moe_act, C * K * I));
    RETURN_IF_ERROR(f32(&ws_.moe_y, C * K * D));
    RETURN_IF_ERROR(f32(&ws_.shared_out, C * D));
    RETURN_IF_ERROR(ws_.moe_ids.Allocate(static_cast<size_t>(T * K) * 4));
    RETURN_IF_ERROR(f32(&ws_.moe_w, T * K));
    RETURN_IF_ERROR(ws_.expert_load.Allocate(static_cast<size_t>(n.num_layers * E) * 8));
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemset(ws_.expert_load.get(), 0, ws_.expert_load.bytes()));
  }
  if (fp8_max_k_ > 0) {
    // FP8 activations: any GEMM input [T, k] and the experts' second quantisation [C*K, I].
    const int64_t K = std::max<int64_t>(n.top_k, 1);
    const int64_t codes = std::max(T * fp8_max_k_, C * K * fp8_moe_inter_);
    const int64_t blocks = std::max(T * ((fp8_max_k_ + 127) / 128),
                                    C * K * ((fp8_moe_inter_ + 127) / 128));
    RETURN_IF_ERROR(ws_.aq.Allocate(static_cast<size_t>(codes)));
    RETURN_IF_ERROR(f32(&ws_.aq_scale, blocks));
    // Split-k partials: splits (<= 16) are used only while a GEMM's tiles (64 x 128) do not fill
    // the SMs, so m * n < num_sms * 64 * 128.
    RETURN_IF_ERROR(f32(&ws_.fp8_split, int64_t{16} * num_sms_ * 64 * 128));
  }
  RETURN_IF_ERROR(ws_.index.Allocate(static_cast<size_t>(2 * T + 1024) * 4));
  const int64_t R = n.max_logit_rows;
  RETURN_IF_ERROR(ws_.sample_params.Allocate(static_cast<size_t>(R) * sizeof(cuda::SampleRowParams)));
  RETURN_IF_ERROR(ws_.sample_out.Allocate(static_cast<size_t>(R) * 4));
  RETURN_IF_ERROR(f32(&ws_.lp_out, R * (1 + 2 * cuda::kLogprobsMaxTop)));
  RETURN_IF_ERROR(ws_.blas.Allocate(32u << 20));
  DSINFER_BLAS_RETURN_IF_ERROR(cublasSetWorkspace(blas_, ws_.blas.get(), ws_.blas.bytes()));
  RETURN_IF_ERROR(scratch_.Allocate(static_cast<size_t>(n.scratch_bytes + (1 << 20))));
  // Rotary frequencies of the model's attention (the indexer's are MLA's: checked per call).
  const std::vector<float>& freq = m.heads > 0 ? m.inv_freq : n.gqa.inv_freq;
  RETURN_IF_ERROR(inv_freq_.Allocate(freq.size() * 4));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(inv_freq_.get(), freq.data(), freq.size() * 4, cudaMemcpyHostToDevice));
  if (n.index.heads > 0) {
    // The indexer: FP8 queries and head weights of every token, scores of a pass of tokens
    // against every position (passes of at most 64M scores), and the f32 input of its
    // weights_proj GEMM.
    const int64_t Hi = n.index.heads, P = std::max<int64_t>(n.max_positions, 1);
    index_rows_ = std::clamp<int64_t>((int64_t{1} << 26) / P, 1, T);
    RETURN_IF_ERROR(ws_.idx_codes.Allocate(static_cast<size_t>(T * Hi * n.index.head_dim)));
    RETURN_IF_ERROR(f32(&ws_.idx_w, T * Hi));
    RETURN_IF_ERROR(f32(&ws_.idx_scores, index_rows_ * P));
    RETURN_IF_ERROR(f32(&ws_.x_f32, T * D));
  }
  // Step inputs: token arrays, sequence descriptors, attention plan, block tables.
  const int64_t max_table = n.max_seqs * ((n.max_positions + 63) / 64);
  const size_t T4 = static_cast<size_t>(T) * 4;
  const size_t regions[StepArena::kNumRegions] = {
      2 * 4, T4, T4, T4, T4,
      static_cast<size_t>(n.max_seqs) * sizeof(cuda::MlaSeqDesc),
      static_cast<size_t>(max_work_) * sizeof(cuda::MlaWorkItem),
      static_cast<size_t>(max_combine_) * sizeof(cuda::MlaCombineItem),
      static_cast<size_t>(max_table) * 4, T4};
  RETURN_IF_ERROR(arena_.Init(regions));
  reserved_ = true;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CudaOps::AvailableKvBytes() const {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  size_t free_b = 0, total_b = 0;
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
  // Ranks sharing this GPU share what is free.
  const int devices = std::max(1, CudaDeviceCount());
  const int sharing = std::max(1, (opts_.ranks_on_node + devices - 1) / devices);
  return static_cast<int64_t>(free_b) / sharing;
}

absl::Status CudaOps::AllocateKvCache(const KvCacheSpec& spec, int32_t num_blocks) {
  if (!reserved_) return absl::FailedPreconditionError("CUDA backend: workspaces not reserved");
  if (spec.dtype != KvDType::kBF16)
    return absl::InvalidArgumentError("the CUDA backend keeps its KV cache in bf16");
  if (spec.block_size != 64)
    return absl::InvalidArgumentError("the CUDA attention kernels assume 64-token blocks");
  if (num_blocks < 1) return absl::InvalidArgumentError("kv cache: at least one block is needed");
  spec_ = spec;
  const int64_t bytes = spec.bytes_per_block() * num_blocks;
  if (absl::Status st = cache_.Allocate(static_cast<size_t>(bytes)); !st.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("kv cache: ", num_blocks, " blocks (", bytes,
                                                     " bytes) do not fit on the GPU: ",
                                                     st.message()));
  }
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemset(cache_.get(), 0, cache_.bytes()));
  num_blocks_ = num_blocks;
  return absl::OkStatus();
}

absl::Status CudaOps::BeginStep(const StepInput& st) {
  if (num_blocks_ == 0) return absl::FailedPreconditionError("no KV cache allocated");
  DSINFER_CUDA_RETURN_IF_ERROR(cudaSetDevice(opts_.device));
  if (st.num_seqs > opts_.max_seqs) {
    return absl::InvalidArgumentError(absl::StrCat("forward: ", st.num_seqs,
                                                   " sequences exceed the CUDA backend's max_seqs ",
                                                   opts_.max_seqs));
  }
  if (st.num_tokens > opts_.max_batched_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("forward: the step's ", st.num_tokens,
                     " tokens exceed the CUDA backend's max_batched_tokens ",
                     opts_.max_batched_tokens));
  }
  host_step_ = &st;
  scratch_used_ = 0;
  const int64_t H = needs_.mla.heads;
  std::vector<cuda::MlaSeqDesc> seqs(st.num_seqs);
  for (int64_t s = 0; s < st.num_seqs; ++s)
    seqs[s] = {static_cast<int32_t>(st.token_offset[s] * H), static_cast<int32_t>(st.n_new[s] * H),
               st.start_pos[s], st.table_offset[s]};
  const cuda::MlaPlan plan = cuda::MakeMlaPlan({.heads = H,
                                                .kv_lora = needs_.mla.kv_lora,
                                                .rope = needs_.mla.rope,
                                                .block_size = 64,
                                                .num_sms = num_sms_,
                                                .max_partials = max_partials_,
                                                .tensor_core = tc_attention_,
                                                .split_tokens = opts_.attention_split_tokens},
                                               st.n_new.data(), st.start_pos.data(), st.num_seqs);
  if (static_cast<int64_t>(plan.work.size()) > max_work_ ||
      static_cast<int64_t>(plan.combine.size()) > max_combine_)
    return absl::InternalError("attention plan exceeds its preallocated capacity");
  step_ = StepView{};
  step_.num_tokens = st.num_tokens;
  step_.num_seqs = st.num_seqs;
  step_.num_logit_rows = static_cast<int64_t>(st.logit_rows.size());
  step_.all_decode = st.all_decode;
  step_.num_work = static_cast<int32_t>(plan.work.size());
  step_.num_combine = static_cast<int32_t>(plan.combine.size());
  step_.work_grid = step_.num_work;
  step_.combine_grid = step_.num_combine;
  step_.kernel = plan.kernel;
  step_.tile_rows = plan.tile_rows;
  // The grids a graph of this batch size launches: bounds that hold for any plan of it (work
  // items <= tiles + CTAs, see MakeMlaPlan).
  step_.tile_bound = st.num_seqs * ((H + plan.tile_rows - 1) / plan.tile_rows);
  const int64_t ctas = plan.kernel == cuda::MlaKernel::kTensorCore
                           ? num_sms_
                           : std::max(1, num_sms_ * 8 / plan.tile_rows);
  step_.work_bound = std::min(max_work_, step_.tile_bound + ctas);
  const int32_t counts[2] = {step_.num_work, step_.num_combine};
  cudaError_t err = cudaSuccess;
  using A = StepArena;
  const bool fits =
      arena_.Put(A::kCounts, counts, 2, stream_, &err) &&
      arena_.Put(A::kTokens, st.tokens.data(), st.tokens.size(), stream_, &err) &&
      arena_.Put(A::kPositions, st.positions.data(), st.positions.size(), stream_, &err) &&
      arena_.Put(A::kSlots, st.slots.data(), st.slots.size(), stream_, &err) &&
      arena_.Put(A::kLogitRows, st.logit_rows.data(), st.logit_rows.size(), stream_, &err) &&
      arena_.Put(A::kSeqs, seqs.data(), seqs.size(), stream_, &err) &&
      arena_.Put(A::kWork, plan.work.data(), plan.work.size(), stream_, &err) &&
      arena_.Put(A::kCombine, plan.combine.data(), plan.combine.size(), stream_, &err) &&
      arena_.Put(A::kTables, st.tables.data(), st.tables.size(), stream_, &err);
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
  // Each token's block table (the indexer, sparse MLA and GQA kernels index by token).
  std::vector<int32_t>& token_table = token_table_host_;
  token_table.resize(st.num_tokens);
  for (int64_t s = 0; s < st.num_seqs; ++s)
    std::fill_n(token_table.begin() + st.token_offset[s], st.n_new[s], st.table_offset[s]);
  if (!arena_.Put(A::kTokenTables, token_table.data(), token_table.size(), stream_, &err))
    return absl::InternalError("step inputs exceed their preallocated buffers");
  DSINFER_CUDA_RETURN_IF_ERROR(err);
  step_.token_table = arena_.dev<int32_t>(A::kTokenTables);
  // (The pinned upload buffer is reused next step; every step ends with a Sync.)
  return absl::OkStatus();
}

absl::StatusOr<Tensor> CudaOps::Scratch(int64_t rows, int64_t cols, ElemType dtype) {
  if (rows < 0 || cols < 0) return absl::InvalidArgumentError("scratch: negative size");
  const int64_t bytes = ScratchBytesOf(rows, cols, dtype);
  if (scratch_used_ + bytes > static_cast<int64_t>(scratch_.bytes())) {
    return absl::InternalError(absl::StrCat("scratch arena: the step needs more than the ",
                                            scratch_.bytes(), " bytes reserved"));
  }
  Tensor t{scratch_.as<char>() + scratch_used_, dtype, rows, cols, cols};
  scratch_used_ += bytes;
  scratch_peak_ = std::max(scratch_peak_, scratch_used_);
  return t;
}

absl::Status CudaOps::Zero(Tensor t) {
  if (t.empty()) return absl::OkStatus();
  const size_t eb = ElemBytes(t.dtype);
  DSINFER_CUDA_RETURN_IF_ERROR(
      cudaMemset2DAsync(t.data, t.ld * eb, 0, t.cols * eb, t.rows, stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::Add(Tensor dst, Tensor src) {
  if (dst.rows != src.rows || dst.cols != src.cols || dst.dtype != ElemType::kF32 ||
      src.dtype != ElemType::kF32)
    return absl::InternalError("add: f32 tensors of one shape expected");
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::AddRows({.dst = dst.as<float>(), .src = src.as<float>(),
                                              .rows = dst.rows, .cols = dst.cols,
                                              .ld_dst = dst.ld, .ld_src = src.ld},
                                             stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::CopyToHost(Tensor src, void* dst) {
  if (src.empty()) return absl::OkStatus();
  const size_t eb = ElemBytes(src.dtype);
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(dst, src.cols * eb, src.data, src.ld * eb,
                                                 src.cols * eb, src.rows, cudaMemcpyDeviceToHost,
                                                 stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::CopyFromHost(const void* src, Tensor dst) {
  if (dst.empty()) return absl::OkStatus();
  const size_t eb = ElemBytes(dst.dtype);
  // From pageable memory: staged by the driver before this returns, so src may go away.
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(dst.data, dst.ld * eb, src, dst.cols * eb,
                                                 dst.cols * eb, dst.rows, cudaMemcpyHostToDevice,
                                                 stream_));
  return absl::OkStatus();
}

absl::StatusOr<const int32_t*> CudaOps::UploadIndex(absl::Span<const int32_t> rows) {
  if (rows.size() * 4 > ws_.index.bytes())
    return absl::InternalError("row index exceeds its workspace");
  if (!rows.empty())
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws_.index.get(), rows.data(), rows.size() * 4,
                                                 cudaMemcpyHostToDevice, stream_));
  return ws_.index.as<int32_t>();
}

absl::Status CudaOps::GatherRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) {
  if (static_cast<int64_t>(rows.size()) != dst.rows || src.cols != dst.cols ||
      src.dtype != dst.dtype)
    return absl::InternalError("gather rows: shapes differ");
  ASSIGN_OR_RETURN(const int32_t* idx, UploadIndex(rows));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::GatherRows({.src = src.data, .dst = dst.data, .index = idx,
                                                 .rows = dst.rows, .cols = dst.cols,
                                                 .ld_src = src.ld, .ld_dst = dst.ld,
                                                 .elem_bytes = ElemBytes(src.dtype)},
                                                stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::ScatterAddRows(Tensor src, absl::Span<const int32_t> rows, Tensor dst) {
  if (static_cast<int64_t>(rows.size()) != src.rows || src.cols != dst.cols ||
      src.dtype != ElemType::kF32 || dst.dtype != ElemType::kF32)
    return absl::InternalError("scatter rows: shapes differ");
  ASSIGN_OR_RETURN(const int32_t* idx, UploadIndex(rows));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::ScatterAddRowsF32({.src = src.data, .dst = dst.data,
                                                        .index = idx, .rows = src.rows,
                                                        .cols = src.cols, .ld_src = src.ld,
                                                        .ld_dst = dst.ld},
                                                       stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::SelectLogitRows(Tensor x, int64_t first, Tensor out) {
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::GatherRows({.src = x.data, .dst = out.data,
                                                 .index = step_.logit_rows + first,
                                                 .rows = out.rows, .cols = x.cols,
                                                 .ld_src = x.ld, .ld_dst = out.ld,
                                                 .elem_bytes = 4},
                                                stream_));
  return absl::OkStatus();
}

// ---- replay ----------------------------------------------------------------------------------

int64_t CudaOps::ReplayKey(const StepInput& st) const {
  // Host-staged collectives (comm_) and forced splits are not capturable / not bounded.
  if (!opts_.cuda_graphs || comm_ != nullptr || !st.all_decode ||
      opts_.attention_split_tokens > 0 || st.num_seqs > opts_.max_logit_rows)
    return -1;
  if (step_.num_work > step_.work_bound || step_.num_combine > step_.tile_bound) return -1;
  return st.num_seqs;
}

bool CudaOps::HasReplay(int64_t key) const { return graphs_.count(key) > 0; }

absl::Status CudaOps::BeginCapture(int64_t key) {
  step_.work_grid = static_cast<int32_t>(step_.work_bound);
  step_.combine_grid = static_cast<int32_t>(step_.tile_bound);
  // Relaxed: library calls that are merely capture-unsafe (lazy initialisation) do not
  // invalidate the capture; nothing in a decode step allocates or synchronises.
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed));
  return absl::OkStatus();
}

absl::Status CudaOps::EndCapture(int64_t key) {
  step_.work_grid = step_.num_work;
  step_.combine_grid = step_.num_combine;
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
  absl::Status st = end == cudaSuccess ? absl::OkStatus() : CudaError(end, "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  if (st.ok()) {
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    if (inst != cudaSuccess) st = CudaError(inst, "cudaGraphInstantiate");
  }
  if (graph) cudaGraphDestroy(graph);
  if (!st.ok()) {
    cudaGetLastError();  // clear a capture error before going on eagerly
    return st;
  }
  graphs_[key] = exec;
  return absl::OkStatus();
}

absl::Status CudaOps::Replay(int64_t key) {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graphs_.at(key), stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::Sync() {
  DSINFER_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

// ---- collectives (host-staged over the Gloo communicator) ------------------------------------

absl::Status CudaOps::ToHost(Tensor t, std::vector<char>* host) {
  host->resize(static_cast<size_t>(std::max<int64_t>(t.bytes(), 1)));
  RETURN_IF_ERROR(CopyToHost(t, host->data()));
  return Sync();
}

absl::Status CudaOps::FromHost(const std::vector<char>& host, Tensor t) {
  return CopyFromHost(host.data(), t);
}

absl::Status CudaOps::AllReduce(Tensor t) {
  if (comm_ == nullptr || t.empty()) return absl::OkStatus();
  if (t.dtype != ElemType::kF32) return absl::InternalError("all-reduce: f32 expected");
  if (nccl_) {
    if (!t.contiguous()) return absl::InternalError("all-reduce: tensor not contiguous");
    return nccl_->AllReduceSum(t.data, t.rows * t.cols, CommDType::kF32);
  }
  RETURN_IF_ERROR(ToHost(t, &host_a_));
  RETURN_IF_ERROR(comm_->AllReduceSum(host_a_.data(), t.rows * t.cols, CommDType::kF32));
  return FromHost(host_a_, t);
}

absl::Status CudaOps::AllGatherRows(Tensor local, absl::Span<const int64_t> rows_per_rank,
                                    Tensor out) {
  if (comm_ == nullptr) {
    const size_t eb = ElemBytes(local.dtype);
    if (local.empty()) return absl::OkStatus();
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(out.data, out.ld * eb, local.data, local.ld * eb,
                                                   local.cols * eb, local.rows,
                                                   cudaMemcpyDeviceToDevice, stream_));
    return absl::OkStatus();
  }
  const int64_t row = local.cols * ElemBytes(local.dtype);
  std::vector<int64_t> bytes(rows_per_rank.size());
  int64_t total = 0;
  for (size_t r = 0; r < bytes.size(); ++r) total += bytes[r] = rows_per_rank[r] * row;
  if (nccl_) {
    if (!local.contiguous() || !out.contiguous())
      return absl::InternalError("all-gather: tensors not contiguous");
    return nccl_->AllGatherV(local.data, out.data, bytes);
  }
  RETURN_IF_ERROR(ToHost(local, &host_a_));
  host_b_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  RETURN_IF_ERROR(comm_->AllGatherV(host_a_.data(), host_b_.data(), bytes));
  return FromHost(host_b_, out);
}

absl::Status CudaOps::AllGatherCols(Tensor local, absl::Span<const int64_t> cols_per_rank,
                                    Tensor out) {
  if (comm_ == nullptr) return AllGatherRows(local, {}, out);
  const int64_t R = local.rows;
  std::vector<int64_t> bytes(cols_per_rank.size());
  int64_t total = 0;
  for (size_t r = 0; r < bytes.size(); ++r) total += bytes[r] = R * cols_per_rank[r] * 4;
  if (nccl_) {
    // Per-rank [R, cols_r] blocks into a device buffer, then each block into its columns.
    if (!local.contiguous()) return absl::InternalError("all-gather: tensor not contiguous");
    if (static_cast<int64_t>(gather_.bytes()) < total) RETURN_IF_ERROR(gather_.Allocate(total));
    RETURN_IF_ERROR(nccl_->AllGatherV(local.data, gather_.get(), bytes));
    const float* src = gather_.as<float>();
    int64_t c0 = 0;
    for (int64_t w : cols_per_rank) {
      if (w > 0)
        DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(out.as<float>() + c0, out.ld * 4, src, w * 4,
                                                       w * 4, R, cudaMemcpyDeviceToDevice, stream_));
      src += R * w;
      c0 += w;
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(ToHost(local, &host_a_));
  host_b_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  RETURN_IF_ERROR(comm_->AllGatherV(host_a_.data(), host_b_.data(), bytes));
  // host_b_: per rank [R, cols_r] blocks -> out [R, sum cols].
  std::vector<float> packed(R * out.cols);
  const float* src = reinterpret_cast<const float*>(host_b_.data());
  int64_t c0 = 0;
  for (int64_t w : cols_per_rank) {
    for (int64_t i = 0; i < R; ++i)
      std::memcpy(packed.data() + i * out.cols + c0, src + i * w, w * sizeof(float));
    src += R * w;
    c0 += w;
  }
  return CopyFromHost(packed.data(), out);
}

absl::Status CudaOps::AllToAllRows(Tensor send, absl::Span<const int64_t> send_rows, Tensor recv,
                                   absl::Span<const int64_t> recv_rows) {
  if (comm_ == nullptr) return AllGatherRows(send, {}, recv);
  const int64_t row = send.cols * ElemBytes(send.dtype);
  std::vector<int64_t> sb(send_rows.size()), rb(recv_rows.size());
  int64_t total = 0;
  for (size_t r = 0; r < sb.size(); ++r) sb[r] = send_rows[r] * row;
  for (size_t r = 0; r < rb.size(); ++r) total += rb[r] = recv_rows[r] * row;
  if (nccl_) {
    if (!send.contiguous() || !recv.contiguous())
      return absl::InternalError("all-to-all: tensors not contiguous");
    return nccl_->AllToAllV(send.data, sb, recv.data, rb);
  }
  RETURN_IF_ERROR(ToHost(send, &host_a_));
  host_b_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  RETURN_IF_ERROR(comm_->AllToAllV(host_a_.data(), sb, host_b_.data(), rb));
  return FromHost(host_b_, recv);
}

absl::Status CudaOps::ExchangeCounts(absl::Span<const int64_t> send, absl::Span<int64_t> recv) {
  if (comm_ == nullptr) {
    std::copy(send.begin(), send.end(), recv.begin());
    return absl::OkStatus();
  }
  return comm_->AllToAll(send.data(), recv.data(), sizeof(int64_t));
}

void CudaOps::InitExpertLoad(const std::vector<bool>& is_moe, int64_t n_experts) {
  is_moe_ = is_moe;
  load_experts_ = n_experts;
  expert_load_.tokens.assign(is_moe.size(), {});
  for (size_t l = 0; l < is_moe.size(); ++l)
    if (is_moe[l]) expert_load_.tokens[l].assign(n_experts, 0);
}

void CudaOps::ResetExpertLoad() {
  if (!ws_.expert_load.empty()) {
    cudaMemsetAsync(ws_.expert_load.get(), 0, ws_.expert_load.bytes(), stream_);
    cudaStreamSynchronize(stream_);
  }
  for (auto& row : expert_load_.tokens) std::fill(row.begin(), row.end(), 0);
}

absl::Status CudaOps::ReduceExpertLoad() {
  if (ws_.expert_load.empty() || comm_ == nullptr) return absl::OkStatus();
  const int64_t L = static_cast<int64_t>(is_moe_.size()), E = load_experts_;
  std::vector<int64_t> counts(L * E);
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(counts.data(), ws_.expert_load.get(),
                                               counts.size() * 8, cudaMemcpyDeviceToHost, stream_));
  RETURN_IF_ERROR(Sync());
  // Cumulative counts of every rank's token slice (exact in f32 up to 2^24 per entry per rank).
  std::vector<float> f(counts.begin(), counts.end());
  RETURN_IF_ERROR(comm_->AllReduceSum(f.data(), L * E, CommDType::kF32));
  for (int64_t l = 0; l < L; ++l)
    for (int64_t e = 0; e < static_cast<int64_t>(expert_load_.tokens[l].size()); ++e)
      expert_load_.tokens[l][e] = static_cast<int64_t>(f[l * E + e]);
  load_on_host_ = true;
  return absl::OkStatus();
}

const ExpertLoad& CudaOps::expert_load() const {
  if (ws_.expert_load.empty() || load_on_host_) return expert_load_;
  const int64_t L = static_cast<int64_t>(is_moe_.size()), E = load_experts_;
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

// ---- outputs ---------------------------------------------------------------------------------

absl::Status CudaOps::Sample(Tensor logits, absl::Span<const int32_t> rows,
                             absl::Span<const SamplingRow> params, int32_t* tokens) {
  const int64_t R = static_cast<int64_t>(rows.size());
  if (R == 0) return absl::OkStatus();
  if (R > opts_.max_logit_rows) return absl::InternalError("sample: too many rows");
  std::vector<cuda::SampleRowParams> rp(R);
  std::vector<int32_t> csr(1, 0), toks, counts;
  for (int64_t i = 0; i < R; ++i) {
    const SamplingRow& s = params[i];
    rp[i] = {.temperature = s.temperature, .top_k = s.top_k, .top_p = s.top_p, .min_p = s.min_p,
             .repetition_penalty = s.repetition_penalty, .frequency_penalty = s.frequency_penalty,
             .presence_penalty = s.presence_penalty, .uniform = s.uniform};
    toks.insert(toks.end(), s.penalty_tokens.begin(), s.penalty_tokens.end());
    counts.insert(counts.end(), s.penalty_counts.begin(), s.penalty_counts.end());
    csr.push_back(static_cast<int32_t>(toks.size()));
  }
  const size_t csr_bytes = (csr.size() + 2 * toks.size()) * 4;
  if (ws_.sample_csr.bytes() < csr_bytes) RETURN_IF_ERROR(ws_.sample_csr.Allocate(2 * csr_bytes));
  int32_t* d_csr = ws_.sample_csr.as<int32_t>();
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_csr, csr.data(), csr.size() * 4,
                                               cudaMemcpyHostToDevice, stream_));
  if (!toks.empty()) {
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_csr + csr.size(), toks.data(), toks.size() * 4,
                                                 cudaMemcpyHostToDevice, stream_));
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d_csr + csr.size() + toks.size(), counts.data(),
                                                 counts.size() * 4, cudaMemcpyHostToDevice,
                                                 stream_));
  }
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws_.sample_params.get(), rp.data(),
                                               rp.size() * sizeof(rp[0]), cudaMemcpyHostToDevice,
                                               stream_));
  bool identity = true;
  for (int64_t i = 0; i < R; ++i) identity &= rows[i] == i;
  auto run = [&](int64_t first, int64_t n, const float* base) {
    return cuda::SampleTokens({.logits = const_cast<float*>(base),
                               .rows = n,
                               .vocab = logits.cols,
                               .ld = logits.ld,
                               .row_params = ws_.sample_params.as<cuda::SampleRowParams>() + first,
                               .penalty_offsets = d_csr + first,
                               .penalty_tokens = d_csr + csr.size(),
                               .penalty_counts = d_csr + csr.size() + toks.size(),
                               .out_tokens = ws_.sample_out.as<int32_t>() + first},
                              stream_);
  };
  if (identity) {
    DSINFER_CUDA_RETURN_IF_ERROR(run(0, R, logits.as<float>()));
  } else {
    for (int64_t i = 0; i < R; ++i)
      DSINFER_CUDA_RETURN_IF_ERROR(run(i, 1, logits.as<float>() + rows[i] * logits.ld));
  }
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(tokens, ws_.sample_out.get(), R * 4,
                                               cudaMemcpyDeviceToHost, stream_));
  return Sync();
}

absl::Status CudaOps::Logprobs(Tensor logits, absl::Span<const int32_t> rows,
                               absl::Span<const int32_t> chosen, int32_t top_n,
                               std::vector<SequenceResult*> out) {
  const int64_t n = static_cast<int64_t>(rows.size());
  if (n == 0) return absl::OkStatus();
  if (n > opts_.max_logit_rows) return absl::InternalError("logprobs: too many rows");
  top_n = std::clamp<int32_t>(top_n, 0, cuda::kLogprobsMaxTop);
  std::vector<int32_t> idx(rows.begin(), rows.end());
  idx.insert(idx.end(), chosen.begin(), chosen.end());
  ASSIGN_OR_RETURN(const int32_t* d_idx, UploadIndex(idx));
  float* lp = ws_.lp_out.as<float>();
  int32_t* top_ids = reinterpret_cast<int32_t*>(lp + n);
  float* top_lp = lp + n + n * top_n;
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::Logprobs({.logits = logits.as<float>(), .ld = logits.ld,
                                               .vocab = logits.cols, .rows = d_idx,
                                               .chosen = d_idx + n, .n = n, .top_n = top_n,
                                               .chosen_logprob = lp, .top_ids = top_ids,
                                               .top_logprobs = top_lp},
                                              stream_));
  std::vector<float> host(n * (1 + 2 * top_n));
  DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host.data(), lp, host.size() * 4,
                                               cudaMemcpyDeviceToHost, stream_));
  RETURN_IF_ERROR(Sync());
  const int32_t* h_ids = reinterpret_cast<const int32_t*>(host.data() + n);
  const float* h_lp = host.data() + n + n * top_n;
  for (int64_t i = 0; i < n; ++i) {
    out[i]->logprob = host[i];
    out[i]->top.clear();
    for (int32_t j = 0; j < top_n; ++j)
      out[i]->top.push_back({h_ids[i * top_n + j], h_lp[i * top_n + j]});
  }
  return absl::OkStatus();
}

}  // namespace cuda_backend
}  // namespace dsinfer
