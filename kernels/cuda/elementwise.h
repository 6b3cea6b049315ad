// Small row-wise kernels of the forward pass: token embedding gather and the SwiGLU activation
// (twin of kernels/cpu/activation.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <climits>

namespace dsinfer::cuda {

struct EmbeddingParams {
  const int32_t* tokens = nullptr;       // [rows] token ids (validated by the caller)
  const __nv_bfloat16* table = nullptr;  // [table_rows, dim]: vocab rows [vocab_begin, +table_rows)
  float* out = nullptr;                  // [rows, dim] row stride ld_out (0: dim); 0 outside
  int64_t rows = 0, dim = 0;
  int64_t vocab_begin = 0, table_rows = INT64_MAX;  // a vocabulary-parallel rank's rows
  int64_t ld_out = 0;
};

cudaError_t EmbeddingGather(const EmbeddingParams& p, cudaStream_t stream);

struct SiluMulParams {
  const float* gate_up = nullptr;  // [rows, 2 * inter]: gate in [:, :inter], up in [:, inter:]
  __nv_bfloat16* out = nullptr;    // [rows, inter]: silu(gate) * up, rounded to bf16
  int64_t rows = 0, inter = 0;
};

cudaError_t SiluMul(const SiluMulParams& p, cudaStream_t stream);

// out[i] = bf16(in[i]), i < n.
cudaError_t CastF32ToBf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t stream);
// out[i] = in[i] widened to f32 (exact), i < n.
cudaError_t CastBf16ToF32(const __nv_bfloat16* in, float* out, int64_t n, cudaStream_t stream);

// dst[r, :] += src[r, :] (f32, row strides ld_dst / ld_src).
struct AddRowsParams {
  float* dst = nullptr;
  const float* src = nullptr;
  int64_t rows = 0, cols = 0, ld_dst = 0, ld_src = 0;
};
cudaError_t AddRows(const AddRowsParams& p, cudaStream_t stream);

// Row gather / scatter-add by an index list (device): gather dst[i] = src[index[i]] for any
// element size; scatter dst[index[i]] += src[i] for f32 (rows in index order, one thread per
// column: rows sharing an index are summed in order i = 0, 1, ...).
struct RowIndexParams {
  const void* src = nullptr;
  void* dst = nullptr;
  const int32_t* index = nullptr;  // [rows]
  int64_t rows = 0, cols = 0;      // rows of the indexed side, elements per row
  int64_t ld_src = 0, ld_dst = 0;  // row strides in elements
  int64_t elem_bytes = 4;          // gather: 1, 2, 4 or 8
};
cudaError_t GatherRows(const RowIndexParams& p, cudaStream_t stream);
cudaError_t ScatterAddRowsF32(const RowIndexParams& p, cudaStream_t stream);

// counts[id] += 1 for every id in ids [n] (ids outside [0, n_counts) skipped): expert load.
cudaError_t CountIds(const int32_t* ids, int64_t n, int64_t* counts, int64_t n_counts,
                     cudaStream_t stream);

}  // namespace dsinfer::cuda
