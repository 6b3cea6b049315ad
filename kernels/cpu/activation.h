// SwiGLU activation of the MLPs: out[i] = silu(gate[i]) * up[i].
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

// gate_up: [rows, 2 * inter] with gate in [:, :inter] and up in [:, inter:]; out: [rows, inter].
void SiluMul(const float* gate_up, float* out, int64_t rows, int64_t inter);

}  // namespace dsinfer::cpu
