// Storage of the paged latent KV cache: per layer, num_blocks blocks of kKvBlockSize rows of
// `width` floats (MLA: kv_lora_rank latent values then qk_rope_head_dim rope-key values).
// Owns bytes only; which block belongs to which sequence is BlockPool/BlockTable's business.
#pragma once

#include <cstdint>
#include <vector>

#include "src/kv_cache/block_pool.h"

namespace dsinfer {

class LatentCacheStorage {
 public:
  LatentCacheStorage(int64_t num_layers, int32_t num_blocks, int64_t width);

  int64_t num_layers() const { return num_layers_; }
  int32_t num_blocks() const { return num_blocks_; }
  int64_t width() const { return width_; }
  // [num_blocks, kKvBlockSize, width] for one layer.
  float* layer(int64_t l) { return data_.data() + l * layer_stride_; }
  const float* layer(int64_t l) const { return data_.data() + l * layer_stride_; }
  static int64_t BytesPerBlock(int64_t num_layers, int64_t width) {
    return num_layers * kKvBlockSize * width * static_cast<int64_t>(sizeof(float));
  }

 private:
  int64_t num_layers_;
  int32_t num_blocks_;
  int64_t width_;
  int64_t layer_stride_;
  std::vector<float> data_;
};

}  // namespace dsinfer
