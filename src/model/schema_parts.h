// Building blocks of a family's weight schema (deepseek_weights.cc, dense_weights.cc): checkpoint
// tensor parts, whole or as the row / column slice a rank reads, and the descriptions made of them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "src/model/weight_desc.h"

namespace dsinfer::schema {

inline TensorPart Whole(std::string name, std::vector<int64_t> shape) {
  return {.name = std::move(name), .shape = std::move(shape), .slice = std::nullopt};
}

inline TensorPart Rows(std::string name, int64_t rows, int64_t cols, int64_t r0, int64_t n) {
  return {.name = std::move(name),
          .shape = {rows, cols},
          .slice = TensorSlice{.row0 = r0, .rows = n, .col0 = 0, .cols = cols}};
}

inline TensorPart Cols(std::string name, int64_t rows, int64_t cols, int64_t c0, int64_t n) {
  return {.name = std::move(name),
          .shape = {rows, cols},
          .slice = TensorSlice{.row0 = 0, .rows = rows, .col0 = c0, .cols = n}};
}

// Elements [e0, e0 + n) of a 1-D tensor of n_full elements (a bias a rank holds part of).
inline TensorPart Elems(std::string name, int64_t n_full, int64_t e0, int64_t n) {
  return {.name = std::move(name),
          .shape = {n_full},
          .slice = TensorSlice{.row0 = 0, .rows = 1, .col0 = e0, .cols = n}};
}

inline WeightDesc Desc(std::string key, WeightRole role, std::vector<TensorPart> parts) {
  WeightDesc d{.key = std::move(key), .role = role, .parts = std::move(parts)};
  d.cols = d.parts.front().cols();
  for (const TensorPart& p : d.parts) d.rows += p.rows();
  return d;
}

inline WeightDesc Vector(std::string key, std::string name, int64_t n) {
  return Desc(std::move(key), WeightRole::kVector, {Whole(std::move(name), {n})});
}

// A SwiGLU MLP's [gate; up] and down, intermediate slice [i0, i0 + n) of inter.
inline void MlpSchema(const std::string& key, const std::string& p, int64_t hidden, int64_t inter,
               int64_t i0, int64_t n, WeightDesc* gate_up, WeightDesc* down) {
  *gate_up = Desc(key + ".gate_up", WeightRole::kLinear,
                  {Rows(p + "gate_proj.weight", inter, hidden, i0, n),
                   Rows(p + "up_proj.weight", inter, hidden, i0, n)});
  *down = Desc(key + ".down", WeightRole::kLinear, {Cols(p + "down_proj.weight", hidden, inter, i0, n)});
}

}  // namespace dsinfer::schema
