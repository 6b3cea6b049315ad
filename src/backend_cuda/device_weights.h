// The model's weights on the GPU, uploaded once at load: bf16 matrices in HF [out, in] layout
// (FP8 checkpoints dequantised with their block scales, as the CPU bf16 backend does), f32
// norms, router and correction bias. Same fusions as src/model/model_weights.h ([q_a | kv_a],
// [gate | up]); routed experts are stacked per layer as [E, 2I, D] (gate/up interleaved in
// 64-row blocks for the grouped GEMM's SiLU epilogue) and [E, D, I].
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/backend_cuda/device_memory.h"
#include "src/config/model_config.h"
#include "src/weights/weight_store.h"

namespace dsinfer::cuda_backend {

struct DeviceMlp {
  int64_t inter = 0;
  DeviceBuffer gate_up;  // bf16 [2 * inter, hidden]: gate rows then up rows
  DeviceBuffer down;     // bf16 [hidden, inter]
};

struct DeviceAttention {
  DeviceBuffer qkv_a;      // bf16 [qa_width + kv_lora + rope, hidden]
  DeviceBuffer q_a_norm;   // f32 [q_lora_rank] (q-LoRA only)
  DeviceBuffer q_b;        // bf16 [heads * qk_head_dim, q_lora_rank] (q-LoRA only)
  DeviceBuffer kv_a_norm;  // f32 [kv_lora]
  DeviceBuffer kv_b;       // bf16 [heads * (nope + v), kv_lora]: per head W_UK rows then W_UV rows
  DeviceBuffer kv_b_f32;   // the same in f32, for the f32 attention path (else empty)
  DeviceBuffer o;          // bf16 [hidden, heads * v]
  int64_t qa_width = 0;    // q_lora_rank, or heads * qk_head_dim without q-LoRA
};

struct DeviceMoe {
  DeviceBuffer gate;             // f32 [n_experts, hidden]
  DeviceBuffer bias;             // f32 [n_experts] or empty
  DeviceBuffer experts_gate_up;  // bf16 [n_experts, 2 * moe_inter, hidden], interleaved
  DeviceBuffer experts_down;     // bf16 [n_experts, hidden, moe_inter]
  DeviceMlp shared;              // n_shared_experts fused (inter = n_shared * moe_inter)
};

struct DeviceLayer {
  DeviceBuffer input_norm, post_attention_norm;  // f32 [hidden]
  DeviceAttention attn;
  bool is_moe = false;
  DeviceMlp mlp;  // dense layers
  DeviceMoe moe;  // MoE layers
};

struct DeviceWeights {
  DeviceBuffer embed;  // bf16 [vocab, hidden]
  std::vector<DeviceLayer> layers;
  DeviceBuffer final_norm;                 // f32 [hidden]
  DeviceBuffer lm_head_own;                // bf16 [vocab, hidden], empty when tied
  const __nv_bfloat16* lm_head = nullptr;  // lm_head_own or embed
  int64_t bytes = 0;
};

// Reads every tensor the forward pass needs from `store` and copies it to the current device;
// kv_b also in f32 (bf16-rounded values, as the CPU keeps it) when kv_b_f32 is set.
absl::StatusOr<std::unique_ptr<DeviceWeights>> UploadWeights(const ModelConfig& c,
                                                             const WeightStore& store,
                                                             bool kv_b_f32);

}  // namespace dsinfer::cuda_backend
