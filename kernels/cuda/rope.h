// Rotary embedding (DeepSeek's interleaved pairs, YaRN frequencies from kernels/cpu/rope.h's
// RopeInvFreq) on the GPU, and the two fused kernels that prepare MLA's inputs:
//   MlaKvAppend: kv_a_layernorm of the latent, RoPE of the shared k_pe, bf16 store of the row
//                [latent | k_pe] into the paged latent cache;
//   MlaQPrep:    RoPE of each head's q_pe into the attention query, q_nope to bf16 for the
//                W_UK absorption GEMM.
// Angles are pos * inv_freq in f32 and cos/sin are scaled by attn_factor, as on the CPU.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

// Twin of cpu::ApplyRope: rotates x[r, h, 0:rope_dim] in place (f32).
struct RopeParams {
  float* x = nullptr;  // [rows, heads, ...] element (r, h, i) at r*row_stride + h*head_stride + i
  const int32_t* positions = nullptr;  // [rows]
  const float* inv_freq = nullptr;     // [rope_dim / 2]
  int64_t rows = 0, heads = 0, rope_dim = 0;
  int64_t head_stride = 0, row_stride = 0;
  float attn_factor = 1.0f;
};

cudaError_t Rope(const RopeParams& p, cudaStream_t stream);

struct MlaKvAppendParams {
  const float* kv = nullptr;  // [tokens, kv_lora + rope] rows at stride ld_kv: latent, then k_pe
  int64_t ld_kv = 0;
  const float* norm_w = nullptr;       // [kv_lora] kv_a_layernorm weight
  const int32_t* positions = nullptr;  // [tokens] absolute positions (RoPE)
  const int32_t* slots =
      nullptr;  // [tokens] cache row: block_table[pos / block] * block + pos % block
  const float* inv_freq = nullptr;  // [rope / 2]
  __nv_bfloat16* cache = nullptr;   // [num_blocks * block_size, kv_lora + rope] one layer
  int64_t tokens = 0, kv_lora = 0, rope = 0;
  float eps = 1e-6f;
  float attn_factor = 1.0f;
};

cudaError_t MlaKvAppend(const MlaKvAppendParams& p, cudaStream_t stream);

struct MlaQPrepParams {
  const float* q = nullptr;  // [tokens, heads, nope + rope] (token stride ldq)
  int64_t ldq = 0;
  const int32_t* positions = nullptr;  // [tokens]
  const float* inv_freq = nullptr;     // [rope / 2]
  __nv_bfloat16* q_nope = nullptr;     // [tokens, heads, nope] out, or nullptr
  // [tokens, heads, kv_lora + rope] out: columns kv_lora.. get rope(q_pe); bf16 or f32 (one set).
  __nv_bfloat16* q_attn = nullptr;
  float* q_attn_f32 = nullptr;
  int64_t tokens = 0, heads = 0, nope = 0, rope = 0, kv_lora = 0;
  float attn_factor = 1.0f;
};

cudaError_t MlaQPrep(const MlaQPrepParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
