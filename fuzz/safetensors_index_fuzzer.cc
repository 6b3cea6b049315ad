// Fuzzes ParseSafetensorsIndex (model.safetensors.index.json).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/weights/safetensors_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto map =
      dsinfer::ParseSafetensorsIndex(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!map.ok()) return 0;
  for (const auto& [tensor, shard] : *map) {
    if (shard.empty() || shard[0] == '/') __builtin_trap();
  }
  return 0;
}
