#include "src/serving/kv_capacity.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/core/memory_info.h"

namespace dsinfer {

absl::StatusOr<int32_t> KvCacheBlocks(const ServerConfig& config, const KvCacheSpec& spec,
                                      int64_t context_length, int64_t available_bytes) {
  const KvCacheConfig& kv = config.kv_cache;
  const int64_t per_block = spec.bytes_per_block();
  const std::string available = absl::StrCat(HumanBytes(static_cast<double>(available_bytes)),
                                             " of memory is available after loading the weights");
  if (kv.num_blocks > 0) {
    const double need = static_cast<double>(kv.num_blocks) * static_cast<double>(per_block);
    if (need > static_cast<double>(available_bytes)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("kv_cache.num_blocks: ", kv.num_blocks, " blocks of ", HumanBytes(per_block),
                       " need ", HumanBytes(need), "; ", available));
    }
    return kv.num_blocks;
  }
  int64_t blocks = 0;
  if (kv.memory_bytes > 0) {
    blocks = kv.memory_bytes / per_block;
    if (blocks < 1) {
      return absl::InvalidArgumentError(absl::StrCat("kv_cache.memory_bytes: ", kv.memory_bytes,
                                                     " is less than one block (", per_block,
                                                     " bytes)"));
    }
    if (kv.memory_bytes > available_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("kv_cache.memory_bytes: ", HumanBytes(static_cast<double>(kv.memory_bytes)),
                       " exceeds what there is: ", available));
    }
  } else {
    const int64_t per_seq = spec.BlocksFor(context_length);
    const int64_t cap = per_seq * std::max<int64_t>(1, config.scheduler.max_running);
    blocks = std::min(
        cap, static_cast<int64_t>(kv.memory_fraction * static_cast<double>(available_bytes)) /
                 per_block);
    if (blocks < 1) {
      return absl::ResourceExhaustedError(
          absl::StrCat("kv_cache: ", available_bytes,
                       " bytes available after loading the weights; one block needs ", per_block,
                       ". Set kv_cache.num_blocks or kv_cache.memory_bytes"));
    }
  }
  return static_cast<int32_t>(std::min<int64_t>(blocks, std::numeric_limits<int32_t>::max()));
}

}  // namespace dsinfer
