// Host-side planning of the paged MLA attention (see mla_attention.h).
#include <algorithm>

#include "kernels/cuda/mla_attention.h"

namespace dsinfer::cuda {
namespace {

struct Tile {
  int32_t seq, row0, kv_len;
};

int64_t CeilDivI(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

MlaPlan MakeMlaPlan(const MlaPlanOptions& o, const int32_t* n_new, const int32_t* start_pos,
                    int64_t num_seqs) {
  MlaPlan plan;
  const bool tc = o.tensor_core && o.kv_lora == 512 && o.rope == 64 && o.block_size % 32 == 0;
  plan.kernel = tc ? MlaKernel::kTensorCore : MlaKernel::kGeneric;
  bool all_decode = true;
  for (int64_t s = 0; s < num_seqs; ++s) all_decode = all_decode && n_new[s] == 1;
  if (tc) {
    // Rows of a tile share every key tile; fewer rows waste fewer MMAs when heads are few.
    plan.tile_rows = 64;
    if (all_decode && o.heads <= 16)
      plan.tile_rows = 16;
    else if (all_decode && o.heads <= 32)
      plan.tile_rows = 32;
  } else {
    plan.tile_rows = 16;
  }
  const int64_t H = o.heads, T = plan.tile_rows, bs = o.block_size;

  std::vector<Tile> tiles;
  int64_t total_blocks = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t rows = static_cast<int64_t>(n_new[s]) * H;
    for (int64_t r0 = 0; r0 < rows; r0 += T) {
      const int64_t last = std::min(rows, r0 + T) - 1;
      const int32_t kv_len = static_cast<int32_t>(start_pos[s] + last / H + 1);
      tiles.push_back({static_cast<int32_t>(s), static_cast<int32_t>(r0), kv_len});
      total_blocks += CeilDivI(kv_len, bs);
    }
  }

  // Splits: enough CTAs to fill the GPU once, in whole blocks of keys.
  const int64_t ctas = tc ? o.num_sms : std::max<int64_t>(1, o.num_sms * 8 / T);
  int64_t blocks_per_split = 0;  // 0: no splitting
  if (o.split_tokens > 0) {
    blocks_per_split = std::max<int64_t>(1, o.split_tokens / bs);
  } else if (static_cast<int64_t>(tiles.size()) < ctas) {
    blocks_per_split = std::max<int64_t>(1, CeilDivI(total_blocks, ctas));
  }

  int64_t slots_left = o.max_partials;
  for (const Tile& t : tiles) {
    const int64_t blocks = CeilDivI(t.kv_len, bs);
    int64_t splits = blocks_per_split ? CeilDivI(blocks, blocks_per_split) : 1;
    splits = std::min<int64_t>({splits, kMlaMaxSplits, blocks});
    if (splits > slots_left) splits = 1;
    if (splits <= 1) {
      plan.work.push_back({t.seq, t.row0, 0, t.kv_len, -1});
      continue;
    }
    const int64_t per = CeilDivI(blocks, splits) * bs;  // keys per split, whole blocks
    splits = CeilDivI(t.kv_len, per);
    const int32_t first = plan.num_partials;
    for (int64_t i = 0; i < splits; ++i) {
      const int32_t b = static_cast<int32_t>(i * per);
      const int32_t e = static_cast<int32_t>(std::min<int64_t>(t.kv_len, (i + 1) * per));
      plan.work.push_back({t.seq, t.row0, b, e, plan.num_partials++});
    }
    slots_left -= splits;
    plan.combine.push_back({t.seq, t.row0, first, static_cast<int32_t>(splits)});
  }
  return plan;
}

}  // namespace dsinfer::cuda
