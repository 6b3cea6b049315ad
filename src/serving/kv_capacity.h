// How many KV blocks the serving pool gets (see README.md, "KV pool size"), from what the
// runner says one block needs (KvCacheSpec) and the memory its backend has left:
//   kv_cache.num_blocks > 0      exactly that many;
//   kv_cache.memory_bytes > 0    memory_bytes / bytes per block;
//   otherwise (the default)      kv_cache.memory_fraction of the memory available after the
//                                weights are loaded (host memory on the CPU, free GPU memory on
//                                CUDA), capped at what scheduler.max_running sequences of full
//                                context length need.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "src/config/server_config.h"
#include "src/kv_cache/kv_cache_spec.h"

namespace dsinfer {

// `available_bytes`: memory there is for the pool (after the weights are loaded). A num_blocks
// or memory_bytes that needs more is RESOURCE_EXHAUSTED naming the key, not a std::bad_alloc
// when the pool is allocated.
absl::StatusOr<int32_t> KvCacheBlocks(const ServerConfig& config, const KvCacheSpec& spec,
                                      int64_t context_length, int64_t available_bytes);

}  // namespace dsinfer
