// How many KV blocks the serving pool gets (see README.md, "KV pool size"):
//   kv_cache.num_blocks > 0      exactly that many;
//   kv_cache.memory_bytes > 0    memory_bytes / bytes per block;
//   otherwise (the default)      kv_cache.memory_fraction of the memory available after the
//                                weights are loaded (MemAvailable), capped at what
//                                scheduler.max_running sequences of full context length need.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/config/server_config.h"

namespace dsinfer {

// Bytes of one block of the latent cache (all layers, kKvBlockSize tokens, f32).
int64_t KvBytesPerBlock(const ModelConfig& model);

// MemAvailable from /proc/meminfo, or an error where there is none.
absl::StatusOr<int64_t> AvailableMemoryBytes();

// `available_bytes`: memory there is for the pool (MemAvailable after the weights are loaded).
// A num_blocks or memory_bytes that needs more is RESOURCE_EXHAUSTED naming the key, not a
// std::bad_alloc when the pool is allocated.
absl::StatusOr<int32_t> KvCacheBlocks(const ServerConfig& config, const ModelConfig& model,
                                      int64_t available_bytes);

}  // namespace dsinfer
