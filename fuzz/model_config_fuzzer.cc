// Fuzzes ParseModelConfig: any text must give an error or a config meeting its invariants.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/config/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = dsinfer::ParseModelConfig(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!c.ok()) return 0;
  if (c->hidden_size <= 0 || c->qk_head_dim() <= 0 || c->n_group <= 0 || c->topk_group <= 0 ||
      c->fp8.block_n <= 0 || c->fp8.block_k <= 0 || c->qk_rope_head_dim % 2 != 0) {
    __builtin_trap();
  }
  if (c->n_routed_experts > 0 &&
      (c->num_experts_per_tok <= 0 || c->num_experts_per_tok > c->n_routed_experts ||
       c->n_routed_experts % c->n_group != 0 || c->topk_group > c->n_group ||
       c->moe_layer_freq <= 0)) {
    __builtin_trap();
  }
  for (int64_t layer = 0; layer < c->num_hidden_layers && layer < 4096; ++layer) {
    (void)c->IsMoeLayer(layer);
  }
  return 0;
}
