// Multi-head latent attention over the paged latent KV cache on the GPU, absorbed form
// (twin of cpu::MlaDecode): each query row is one (token, head) pair holding
// [q_nope · W_UK (kv_lora) | rotated q_pe (rope)]; keys are the cached rows [latent | k_pe]
// (kv_lora + rope wide) and values their first kv_lora columns, so the output stays latent.
//
// Decode and prefill (chunked or not) are one kernel: query token i of a sequence sits at
// position start_pos + i and attends causally to keys [0, start_pos + i]. This keeps prefill off
// the expanded form's [context, heads, nope + v] workspace.
//
// Work is planned once per step on the host (MakeMlaPlan: it depends only on the sequences'
// lengths) and reused by every layer, as FlashMLA's scheduling metadata and FlashInfer's plan:
// query rows are cut into tiles, long key ranges into splits (split-KV), and a combine kernel
// merges the splits through their log-sum-exp.
//
// Kernels: a tensor-core kernel (mma.sync bf16, sm_80+) for DeepSeek's 512 + 64 layout, tiles of
// 16/32/64 query rows sharing each key tile loaded into shared memory once; and a generic CUDA-core
// kernel for any other width (the small test models). Both f32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace dsinfer::cuda {

inline constexpr int kMlaMaxSplits = 64;

struct MlaSeqDesc {
  int32_t q_row0 = 0;        // first query row of the sequence in q / out: token offset * heads
  int32_t n_rows = 0;        // query rows: new tokens * heads
  int32_t start_pos = 0;     // tokens cached before this step; new token i is at start_pos + i
  int32_t table_offset = 0;  // first entry of the sequence's block table in block_tables
};

struct MlaWorkItem {
  int32_t seq = 0;
  int32_t row0 = 0;  // first query row of the tile, within the sequence
  int32_t kv_begin = 0,
          kv_end = 0;   // keys [kv_begin, kv_end) of this split; kv_begin % block_size == 0
  int32_t partial = 0;  // -1: the tile's only split, writes `out`; else its partial slot
};

struct MlaCombineItem {
  int32_t seq = 0, row0 = 0;  // the tile
  int32_t first_partial = 0;  // its splits' slots: first_partial .. first_partial + num_splits - 1
  int32_t num_splits = 0;
};

enum class MlaKernel : int32_t { kGeneric, kTensorCore };

struct MlaPlan {
  MlaKernel kernel = MlaKernel::kGeneric;
  int32_t tile_rows = 16;  // query rows per tile (tensor core: 16, 32 or 64)
  std::vector<MlaWorkItem> work;
  std::vector<MlaCombineItem> combine;
  int32_t num_partials = 0;  // partial slots used
};

struct MlaPlanOptions {
  int64_t heads = 0, kv_lora = 0, rope = 0, block_size = 0;
  int num_sms = 132;         // CTAs the GPU runs at once (tensor-core kernel: one per SM)
  int64_t max_partials = 0;  // capacity of partial_out / partial_lse, in slots
  bool tensor_core = true;   // allowed (see MlaTensorCoreSupported); used when dims match
  int64_t split_tokens = 0;  // force splits of this many keys (multiple of block_size); 0: auto
};

// Plans one step for sequences with n_new[s] new tokens after start_pos[s] cached ones.
// Pure host code. Splits are only made where slots remain in max_partials.
MlaPlan MakeMlaPlan(const MlaPlanOptions& o, const int32_t* n_new, const int32_t* start_pos,
                    int64_t num_seqs);

// Rows of one partial slot, for sizing: partial_out holds [slots, MlaMaxTileRows(), kv_lora].
inline constexpr int32_t MlaMaxTileRows() { return 64; }

// Whether `device` can run the tensor-core kernel for these dimensions (kv_lora 512, rope 64,
// block_size a multiple of 32, compute capability >= 8.0 and ~157 KB of shared memory per block).
bool MlaTensorCoreSupported(int64_t kv_lora, int64_t rope, int64_t block_size, int device);

struct MlaAttentionParams {
  // [q_rows, kv_lora + rope]: rows are [tokens, heads] of all sequences.
  const __nv_bfloat16* q = nullptr;
  // [num_blocks, block_size, kv_lora + rope], one layer.
  const __nv_bfloat16* cache = nullptr;
  // Block ids; sequence s's table starts at seqs[s].table_offset.
  const int32_t* block_tables = nullptr;
  const MlaSeqDesc* seqs = nullptr;         // [num_seqs]
  const MlaWorkItem* work = nullptr;        // [num_work]
  int32_t num_work = 0;                     // grid size (an upper bound when num_work_dev is set)
  const MlaCombineItem* combine = nullptr;  // [num_combine]
  int32_t num_combine = 0;
  // Optional device-side counts (CUDA graphs: one grid for every plan of a batch size; CTAs
  // past the step's count exit at once).
  const int32_t* num_work_dev = nullptr;
  const int32_t* num_combine_dev = nullptr;
  float* partial_out = nullptr;  // [num_partials, tile_rows, kv_lora]
  float* partial_lse = nullptr;  // [num_partials, tile_rows] log2-domain LSE
  __nv_bfloat16* out = nullptr;  // [q_rows, kv_lora] normalised latent output
  // Generic kernel only: f32 query / output in place of q / out (the CPU bf16 backend's
  // precision, where only the cache is bf16).
  const float* q_f32 = nullptr;  // [q_rows, kv_lora + rope]
  float* out_f32 = nullptr;      // [q_rows, kv_lora]
  MlaKernel kernel = MlaKernel::kGeneric;
  int32_t tile_rows = 0;
  int64_t heads = 0, kv_lora = 0, rope = 0, block_size = 0;
  float softmax_scale = 0;
};

// Raises the tensor-core kernels' shared-memory limit (done on first use too); call once before
// capturing launches into a CUDA graph.
cudaError_t MlaAttentionPrepare();

// Runs the attention and, when the plan has splits, the combine kernel.
cudaError_t MlaAttention(const MlaAttentionParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
