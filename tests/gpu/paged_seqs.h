// GPU tests' paged sequences: per sequence start_pos cached tokens and n_new new ones, blocks of
// 64 tokens drawn from a shuffled pool (so a sequence's blocks are scattered), the step's
// per-token arrays (positions, cache slots, each token's table offset) and the earlier tokens'
// ones (to fill the cache before the step).
#pragma once

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace dsinfer::gpu_test {

struct PagedSeqs {
  static constexpr int64_t kBs = 64;
  std::vector<int32_t> tables;                                     // all sequences' block ids
  std::vector<int32_t> table_offset;                               // [S]
  std::vector<int32_t> positions, slots, token_table;              // the step's tokens
  std::vector<int32_t> old_positions, old_slots, old_token_table;  // cached before the step
  int64_t num_blocks = 0;

  PagedSeqs(const std::vector<int32_t>& start_pos, const std::vector<int32_t>& n_new,
            uint64_t seed) {
    const size_t S = start_pos.size();
    for (size_t s = 0; s < S; ++s) num_blocks += (start_pos[s] + n_new[s] + kBs - 1) / kBs;
    num_blocks += 3;
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), std::mt19937_64(seed));
    int64_t next = 0;
    for (size_t s = 0; s < S; ++s) {
      const int64_t nb = (start_pos[s] + n_new[s] + kBs - 1) / kBs;
      table_offset.push_back(static_cast<int32_t>(tables.size()));
      const int32_t* table = nullptr;
      for (int64_t b = 0; b < nb; ++b) tables.push_back(pool[next++]);
      table = tables.data() + table_offset[s];
      auto slot = [&](int32_t t) { return table[t / kBs] * static_cast<int32_t>(kBs) + t % kBs; };
      for (int32_t t = 0; t < start_pos[s]; ++t) {
        old_positions.push_back(t);
        old_slots.push_back(slot(t));
        old_token_table.push_back(table_offset[s]);
      }
      for (int32_t t = start_pos[s]; t < start_pos[s] + n_new[s]; ++t) {
        positions.push_back(t);
        slots.push_back(slot(t));
        token_table.push_back(table_offset[s]);
      }
    }
  }
  const int32_t* table_of_token(size_t i) const { return tables.data() + token_table[i]; }
};

}  // namespace dsinfer::gpu_test
