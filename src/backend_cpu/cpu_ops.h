// The CPU backend: BackendOps over kernels/cpu, the reference twin of every GPU op. f32 runs
// follow DeepSeek's reference exactly; bf16 runs hold bf16 weights and round GEMM inputs to bf16
// with f32 accumulation (norms, router, kv_b absorption and the residual stream stay f32).
// FP8 checkpoints keep their e4m3 weights with 128x128 block scales and dequantise one tile at a
// time inside the GEMM (never the whole tensor), unless the run asks to dequantise at load.
#pragma once

#include <memory>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "src/comm/communicator.h"
#include "src/core/thread_pool.h"
#include "src/model/backend_ops.h"
#include "src/model/precision.h"

namespace dsinfer {

struct CpuOpsOptions {
  Precision precision = Precision::kF32;
  bool keep_fp8 = true;     // FP8 / FP4 checkpoint weights stay quantised (else dequantised at load)
  // FP8 weights multiply FP8 activations (per-row 1x128 blocks), DeepSeek's reference with
  // gemm_impl = "fp8" and the CPU twin of the GPU's FP8 GEMMs; else the dequantised weights
  // multiply the activations (gemm_impl = "bf16", bf16-rounded in bf16 runs).
  bool fp8_activations = false;
  int threads = 0;          // 0: DSINFER_THREADS or all cores
  Communicator* comm = nullptr;  // the sharded layout's ranks (Gloo); not owned
};

std::unique_ptr<BackendOps> MakeCpuOps(const CpuOpsOptions& options);

}  // namespace dsinfer
