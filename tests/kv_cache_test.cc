#include <gtest/gtest.h>

#include "src/kv_cache/block_pool.h"
#include "src/kv_cache/latent_cache.h"

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

TEST(LatentCacheStorage, LayersAreDisjoint) {
  LatentCacheStorage s(3, 2, 5);
  EXPECT_EQ(s.layer(1) - s.layer(0), 2 * kKvBlockSize * 5);
  s.layer(2)[2 * kKvBlockSize * 5 - 1] = 1.0f;  // last element is addressable
}

}  // namespace
}  // namespace dsinfer
