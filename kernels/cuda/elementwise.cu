#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) EmbeddingKernel(EmbeddingParams p) {
  const int64_t r = blockIdx.x;
  const int64_t row = static_cast<int64_t>(p.tokens[r]) - p.vocab_begin;
  float* dst = p.out + r * (p.ld_out ? p.ld_out : p.dim);
  if (row < 0 || row >= p.table_rows) {  // another rank's vocabulary row
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) dst[i] = 0.f;
    return;
  }
  const __nv_bfloat16* src = p.table + row * p.dim;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) dst[i] = Bf16ToF32(src[i]);
}

__global__ void __launch_bounds__(kThreads) AddRowsKernel(AddRowsParams p) {
  const int64_t r = blockIdx.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x; i < p.cols;
       i += static_cast<int64_t>(gridDim.y) * kThreads)
    p.dst[r * p.ld_dst + i] += p.src[r * p.ld_src + i];
}

template <typename T>
__global__ void __launch_bounds__(kThreads) GatherKernel(RowIndexParams p) {
  const int64_t r = blockIdx.x;
  const T* src = static_cast<const T*>(p.src) + static_cast<int64_t>(p.index[r]) * p.ld_src;
  T* dst = static_cast<T*>(p.dst) + r * p.ld_dst;
  for (int64_t i = threadIdx.x; i < p.cols; i += kThreads) dst[i] = src[i];
}

__global__ void __launch_bounds__(kThreads) ScatterAddKernel(RowIndexParams p) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= p.cols) return;
  const float* src = static_cast<const float*>(p.src);
  float* dst = static_cast<float*>(p.dst);
  for (int64_t r = 0; r < p.rows; ++r) dst[p.index[r] * p.ld_dst + c] += src[r * p.ld_src + c];
}

__global__ void __launch_bounds__(kThreads)
    CountKernel(const int32_t* ids, int64_t n, int64_t* counts, int64_t n_counts) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int32_t id = ids[i];
    if (id >= 0 && id < n_counts)
      atomicAdd(reinterpret_cast<unsigned long long*>(counts + id), 1ull);
  }
}

__global__ void __launch_bounds__(kThreads) SiluMulKernel(SiluMulParams p) {
  const int64_t r = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (i >= p.inter) return;
  const float* g = p.gate_up + r * 2 * p.inter;
  const float gv = g[i], uv = g[p.inter + i];
  p.out[r * p.inter + i] = __float2bfloat16_rn(gv / (1.0f + expf(-gv)) * uv);
}

__global__ void __launch_bounds__(kThreads)
    CastKernel(const float* in, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void __launch_bounds__(kThreads)
    WidenKernel(const __nv_bfloat16* in, float* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    out[i] = __bfloat162float(in[i]);
}

}  // namespace

cudaError_t AddRows(const AddRowsParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return cudaSuccess;
  const int64_t y = CeilDiv(p.cols, kThreads);
  dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>(y < 64 ? y : 64));
  AddRowsKernel<<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t GatherRows(const RowIndexParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return cudaSuccess;
  const unsigned grid = static_cast<unsigned>(p.rows);
  switch (p.elem_bytes) {
    case 1: GatherKernel<uint8_t><<<grid, kThreads, 0, stream>>>(p); break;
    case 2: GatherKernel<uint16_t><<<grid, kThreads, 0, stream>>>(p); break;
    case 4: GatherKernel<uint32_t><<<grid, kThreads, 0, stream>>>(p); break;
    case 8: GatherKernel<uint64_t><<<grid, kThreads, 0, stream>>>(p); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t ScatterAddRowsF32(const RowIndexParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.cols <= 0) return cudaSuccess;
  ScatterAddKernel<<<static_cast<unsigned>(CeilDiv(p.cols, kThreads)), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t CountIds(const int32_t* ids, int64_t n, int64_t* counts, int64_t n_counts,
                     cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const int64_t blocks = CeilDiv(n, kThreads);
  CountKernel<<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), kThreads, 0, stream>>>(
      ids, n, counts, n_counts);
  return cudaGetLastError();
}

cudaError_t CastF32ToBf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned blocks =
      static_cast<unsigned>(CeilDiv(n, kThreads) < 4096 ? CeilDiv(n, kThreads) : 4096);
  CastKernel<<<blocks, kThreads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

cudaError_t CastBf16ToF32(const __nv_bfloat16* in, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned blocks =
      static_cast<unsigned>(CeilDiv(n, kThreads) < 4096 ? CeilDiv(n, kThreads) : 4096);
  WidenKernel<<<blocks, kThreads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

cudaError_t EmbeddingGather(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  EmbeddingKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t SiluMul(const SiluMulParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.inter <= 0) return cudaSuccess;
  dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>(CeilDiv(p.inter, kThreads)));
  SiluMulKernel<<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
