// Launchers of the FP8 block-scaled GEMMs (kernel: fp8_mma.cuh): the dense Fp8Gemm with its
// optional deterministic split-k, the MoE Fp8GroupedGemm, and the gate/up interleaving helper.
//
// Why a hand-written mma.sync kernel rather than cuBLASLt's block-scaled FP8 matmul (CUDA 12.9+,
// VEC128 / BLK128x128 scale modes): the grouped MoE GEMM needs its own kernel anyway (device-side
// expert offsets, row gather, fused SiLU epilogue, no host sync), and sharing it keeps dense and
// grouped results identical in numerics and lets the CPU twin describe both; cuBLASLt also wants
// its activation scales in its own (m-major) layout and runs on Hopper only. The benchmark
// compares against cuBLASLt FP8 and cuBLAS bf16 (bench/cuda_fp8_bench.cc).
#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/fp8_mma.cuh"

namespace dsinfer::cuda {
namespace {

using fp8mma::Epi;

// Sums the split partials in split order (deterministic), then stores or accumulates.
__global__ void SplitReduceKernel(const float* partial, int64_t splits, int64_t m, int64_t n,
                                  float* y, __nv_bfloat16* y_bf16, int64_t ldy, bool accumulate) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= m * n) return;
  const int64_t row = idx / n, col = idx % n;
  float s = 0.f;
  for (int64_t z = 0; z < splits; ++z) s += partial[z * m * n + idx];
  if (y_bf16) {
    y_bf16[row * ldy + col] = __float2bfloat16_rn(s);
  } else {
    float* dst = y + row * ldy + col;
    *dst = accumulate ? *dst + s : s;
  }
}

// Per device: 0 not yet checked, 1 ready, 2 no sm_89+ binary.
constexpr int kMaxDevices = 64;
std::atomic<int> g_device_state[kMaxDevices];

// Raises the kernels' dynamic shared memory limit and checks that the binary chosen for the
// current device has the FP8 MMA (binaryVersion >= 89). Cheap after the first call per device,
// and safe during stream capture (no stream work).
cudaError_t Prepare() {
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  std::atomic<int>* state = dev < kMaxDevices ? &g_device_state[dev] : nullptr;
  if (state && state->load() == 1) return cudaSuccess;
  if (state && state->load() == 2) return cudaErrorNotSupported;
  cudaFuncAttributes attr{};
  err = cudaFuncGetAttributes(&attr, fp8mma::Fp8MmaKernel<Epi::kF32>);
  if (err != cudaSuccess) return err;
  if (attr.binaryVersion < 89) {
    if (state) state->store(2);
    return cudaErrorNotSupported;
  }
  for (const void* fn : {reinterpret_cast<const void*>(fp8mma::Fp8MmaKernel<Epi::kF32>),
                         reinterpret_cast<const void*>(fp8mma::Fp8MmaKernel<Epi::kBf16>),
                         reinterpret_cast<const void*>(fp8mma::Fp8MmaKernel<Epi::kPartial>),
                         reinterpret_cast<const void*>(fp8mma::Fp8MmaKernel<Epi::kSiluMul>)}) {
    err = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               fp8mma::kSmemBytes);
    if (err != cudaSuccess) return err;
  }
  if (state) state->store(1);
  return cudaSuccess;
}

bool Aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

cudaError_t Launch(Epi epi, const fp8mma::Args& args, dim3 grid, cudaStream_t stream) {
  const size_t smem = fp8mma::kSmemBytes;
  switch (epi) {
    case Epi::kF32:
      fp8mma::Fp8MmaKernel<Epi::kF32><<<grid, fp8mma::kThreads, smem, stream>>>(args);
      break;
    case Epi::kBf16:
      fp8mma::Fp8MmaKernel<Epi::kBf16><<<grid, fp8mma::kThreads, smem, stream>>>(args);
      break;
    case Epi::kPartial:
      fp8mma::Fp8MmaKernel<Epi::kPartial><<<grid, fp8mma::kThreads, smem, stream>>>(args);
      break;
    case Epi::kSiluMul:
      fp8mma::Fp8MmaKernel<Epi::kSiluMul><<<grid, fp8mma::kThreads, smem, stream>>>(args);
      break;
  }
  return cudaGetLastError();
}

}  // namespace

bool Fp8GemmSupported() { return Prepare() == cudaSuccess; }

int64_t Fp8GemmSplits(int64_t m, int64_t n, int64_t k, int num_sms) {
  const int64_t tiles = CeilDiv(m, fp8mma::kBM) * CeilDiv(n, fp8mma::kBN);
  const int64_t kb = CeilDiv(k, kFp8Block);
  if (tiles >= num_sms || kb < 4) return 1;
  const int64_t want = CeilDiv(2 * static_cast<int64_t>(num_sms), tiles);
  return std::max<int64_t>(1, std::min({want, kb / 2, int64_t{16}}));
}

cudaError_t Fp8Gemm(const Fp8GemmParams& p, cudaStream_t stream) {
  if (p.m <= 0 || p.n <= 0) return cudaSuccess;
  const int64_t lda = p.lda ? p.lda : p.k, ldw = p.ldw ? p.ldw : p.k, ldy = p.ldy ? p.ldy : p.n;
  const int64_t kb = CeilDiv(p.k, kFp8Block);
  if (p.k <= 0 || p.k % 16 != 0 || lda % 16 != 0 || ldw % 16 != 0 || !Aligned16(p.a) ||
      !Aligned16(p.w) || (p.y == nullptr) == (p.y_bf16 == nullptr) ||
      (p.accumulate && p.y_bf16 != nullptr) || p.k_splits < 1 ||
      (p.k_splits > 1 && p.workspace == nullptr) || CeilDiv(p.m, fp8mma::kBM) > 65535)
    return cudaErrorInvalidValue;
  cudaError_t err = Prepare();
  if (err != cudaSuccess) return err;
  // Every split gets at least one k-block.
  const int64_t per_split = CeilDiv(kb, p.k_splits), splits = CeilDiv(kb, per_split);
  fp8mma::Args args{};
  args.a = p.a;
  args.a_scale = p.a_scale;
  args.lda = lda;
  args.ld_a_scale = p.ld_a_scale ? p.ld_a_scale : kb;
  args.w = p.w;
  args.w_scale = p.w_scale;
  args.ldw = ldw;
  args.ld_w_scale = p.ld_w_scale ? p.ld_w_scale : kb;
  args.m = p.m;
  args.n = p.n;
  args.k = p.k;
  args.kb_per_split = static_cast<int32_t>(per_split);
  args.c = p.y;
  args.c_bf16 = p.y_bf16;
  args.ldc = ldy;
  args.accumulate = p.accumulate;
  args.partial = p.workspace;
  const dim3 grid(static_cast<unsigned>(CeilDiv(p.n, fp8mma::kBN)),
                  static_cast<unsigned>(CeilDiv(p.m, fp8mma::kBM)), static_cast<unsigned>(splits));
  if (splits == 1) return Launch(p.y_bf16 ? Epi::kBf16 : Epi::kF32, args, grid, stream);
  err = Launch(Epi::kPartial, args, grid, stream);
  if (err != cudaSuccess) return err;
  const int64_t total = p.m * p.n;
  SplitReduceKernel<<<static_cast<unsigned>(CeilDiv(total, 256)), 256, 0, stream>>>(
      p.workspace, splits, p.m, p.n, p.y, p.y_bf16, ldy, p.accumulate);
  return cudaGetLastError();
}

cudaError_t Fp8GroupedGemm(const Fp8GroupedGemmParams& p, cudaStream_t stream) {
  if (p.max_tiles <= 0 || p.n <= 0) return cudaSuccess;
  const int64_t lda = p.lda ? p.lda : p.k, kb = CeilDiv(p.k, kFp8Block);
  const bool silu = p.epilogue == GroupedEpilogue::kSiluMul;
  if (p.k <= 0 || p.k % 16 != 0 || lda % 16 != 0 || !Aligned16(p.a) || !Aligned16(p.w) ||
      p.max_tiles > 65535 || (silu && p.n % 2 != 0) || (silu ? !p.act : !p.c))
    return cudaErrorInvalidValue;
  cudaError_t err = Prepare();
  if (err != cudaSuccess) return err;
  const int64_t scale_rows = (silu ? 2 : 1) * CeilDiv(p.n, fp8mma::kBN);
  fp8mma::Args args{};
  args.a = p.a;
  args.a_scale = p.a_scale;
  args.a_row_index = p.a_row_index;
  args.lda = lda;
  args.ld_a_scale = p.ld_a_scale ? p.ld_a_scale : kb;
  args.w = p.w;
  args.w_scale = p.w_scale;
  args.ldw = p.k;
  args.w_stride = p.n * p.k;
  args.w_scale_stride = scale_rows * kb;
  args.ld_w_scale = kb;
  args.gate_up_scales = silu;
  args.expert_offsets = p.expert_offsets;
  args.tile_offsets = p.tile_offsets;
  args.n_experts = static_cast<int32_t>(p.n_experts);
  args.n = p.n;
  args.k = p.k;
  args.kb_per_split = static_cast<int32_t>(kb);
  args.c = p.c;
  args.c_bf16 = p.act;
  args.ldc = p.ldc;
  const dim3 grid(static_cast<unsigned>(CeilDiv(p.n, fp8mma::kBN)),
                  static_cast<unsigned>(p.max_tiles));
  return Launch(silu ? Epi::kSiluMul : Epi::kF32, args, grid, stream);
}

void InterleaveGateUpFp8(const uint8_t* gate, const float* gate_scale, const uint8_t* up,
                         const float* up_scale, int64_t inter, int64_t k, uint8_t* dst,
                         float* dst_scale) {
  const int64_t blk = fp8mma::kBN / 2, kb = CeilDiv(k, kFp8Block);
  for (int64_t t = 0, f0 = 0; f0 < inter; ++t, f0 += blk) {
    const int64_t w = std::min(blk, inter - f0);
    uint8_t* out = dst + 2 * f0 * k;
    std::memcpy(out, gate + f0 * k, static_cast<size_t>(w * k));
    std::memcpy(out + w * k, up + f0 * k, static_cast<size_t>(w * k));
    // Features [f0, f0 + w) lie in checkpoint scale row f0 / 128 of both halves.
    std::memcpy(dst_scale + 2 * t * kb, gate_scale + (f0 / kFp8Block) * kb,
                static_cast<size_t>(kb) * sizeof(float));
    std::memcpy(dst_scale + (2 * t + 1) * kb, up_scale + (f0 / kFp8Block) * kb,
                static_cast<size_t>(kb) * sizeof(float));
  }
}

}  // namespace dsinfer::cuda
