// Fuzzes ParseSafetensorsHeader: any bytes must give an error or tensors lying inside the input.
#include <cstddef>
#include <cstdint>

#include "src/weights/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<dsinfer::SafetensorsHeader> h = dsinfer::ParseSafetensorsHeader(data, size);
  if (!h.ok()) return 0;
  uint32_t sum = 0;
  for (const dsinfer::TensorInfo& t : h->tensors) {
    if (t.data < data || t.data + t.nbytes > data + size) __builtin_trap();
    if (static_cast<uint64_t>(t.numel()) * dsinfer::DTypeSize(t.dtype) != t.nbytes) {
      __builtin_trap();
    }
    // Touch every byte so that AddressSanitizer sees any read past the input.
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
  }
  volatile uint32_t sink = sum;
  (void)sink;
  return 0;
}
