#include <gtest/gtest.h>

#include "src/kv_cache/block_pool.h"
#include "src/kv_cache/kv_cache_spec.h"

namespace dsinfer {
namespace {

TEST(BlockPool, AllocateAllOrNothingAndRefCounts) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.Allocate(3, &a).ok());
  EXPECT_EQ(pool.num_free(), 1);
  std::vector<int32_t> b;
  absl::Status st = pool.Allocate(2, &b);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.num_free(), 1);
  pool.AddRef(a[0]);
  pool.Release(a[0]);
  EXPECT_EQ(pool.num_free(), 1);  // still referenced once
  pool.Release(a[0]);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockTable, ReserveGrowsByBlocks) {
  BlockPool pool(8);
  BlockTable t;
  ASSERT_TRUE(t.Reserve(pool, 1).ok());
  EXPECT_EQ(t.blocks().size(), 1u);
  ASSERT_TRUE(t.Reserve(pool, 64).ok());
  EXPECT_EQ(t.blocks().size(), 1u);
  ASSERT_TRUE(t.Reserve(pool, 65).ok());
  EXPECT_EQ(t.blocks().size(), 2u);
  EXPECT_EQ(t.capacity_tokens(), 128);
  EXPECT_FALSE(t.Reserve(pool, 64 * 9).ok());
  t.Release(pool);
  EXPECT_EQ(pool.num_free(), 8);
}

TEST(KvCacheSpec, BytesFollowTheRow) {
  const KvCacheSpec f32{.num_layers = 3, .row_width = 5, .dtype = KvDType::kF32};
  EXPECT_EQ(f32.bytes_per_token(), 3 * 5 * 4);
  EXPECT_EQ(f32.bytes_per_block(), 3 * 5 * 4 * kKvBlockSize);
  const KvCacheSpec b16{.num_layers = 61, .row_width = 576, .dtype = KvDType::kBF16};
  EXPECT_EQ(b16.bytes_per_token(), 61 * 576 * 2);  // DeepSeek-V3: 70,272 bytes per token
  EXPECT_EQ(b16.BlocksFor(65), 2);
  EXPECT_EQ(b16.BlocksFor(64), 1);
}

}  // namespace
}  // namespace dsinfer
