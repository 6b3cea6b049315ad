#include "src/kv_cache/latent_cache.h"

namespace dsinfer {

LatentCacheStorage::LatentCacheStorage(int64_t num_layers, int32_t num_blocks, int64_t width)
    : num_layers_(num_layers),
      num_blocks_(num_blocks),
      width_(width),
      layer_stride_(static_cast<int64_t>(num_blocks) * kKvBlockSize * width),
      data_(static_cast<size_t>(num_layers * layer_stride_), 0.f) {}

}  // namespace dsinfer
