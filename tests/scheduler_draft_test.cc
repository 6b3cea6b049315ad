// MTP drafts in the scheduler: a draft rides on its sequence's decode (one more token and the
// block it may need), counts as KV only once accepted, and a rejected draft's slot is rolled
// back (a block that only it occupied returns to the pool).
#include <gtest/gtest.h>

#include "src/scheduler/scheduler.h"
#include "tests/scheduler_harness.h"

namespace dsinfer {
namespace {

using testing::TestLimits;
using testing::Tokens;

struct DraftFixture {
  std::unique_ptr<Scheduler> s;
  DraftFixture(int32_t blocks, int64_t max_tokens, int64_t prompt_len = 63) {
    SchedulerLimits l = TestLimits();
    l.num_kv_blocks = blocks;
    l.prefix_caching = false;
    auto c = Scheduler::Create(l, {testing::Tenant("t")});
    EXPECT_TRUE(c.ok()) << c.status();
    s = std::move(*c);
    NewRequest r{.id = 1, .tenant = "t", .priority = Priority::kInteractive,
                 .prompt = Tokens(1, prompt_len), .max_tokens = max_tokens};
    EXPECT_TRUE(s->Add(std::move(r), 0).status.ok());
    StepPlan p = s->Plan(0);
    s->Commit(p);
    EXPECT_EQ(p.items.size(), 1u);
    const std::pair<uint64_t, int32_t> tok = {1, 100};
    s->OnTokens({&tok, 1}, {});
  }
  StepPlan Step() {
    StepPlan p = s->Plan(0);
    s->Commit(p);
    return p;
  }
};

TEST(SchedulerDraft, RejectedDraftReleasesItsBlock) {
  DraftFixture f(8, 16);  // prompt 63 + token 100 at position 63: the draft is position 64
  const int32_t free_before = f.s->block_pool().num_free();
  f.s->SetDraft(1, 200);
  StepPlan p = f.Step();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].num_draft, 1);
  EXPECT_EQ(p.items[0].num_tokens, 2);
  EXPECT_TRUE(p.items[0].sample);
  EXPECT_EQ(std::vector<int32_t>(p.tokens(p.items[0]).begin(), p.tokens(p.items[0]).end()),
            (std::vector<int32_t>{100, 200}));
  EXPECT_EQ(p.items[0].num_blocks, 2);  // the draft's slot starts block 1
  EXPECT_EQ(f.s->block_pool().num_free(), free_before - 1);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  // Rejected: one token (not the draft) comes back; block 1 is free again.
  const std::pair<uint64_t, int32_t> tok = {1, 300};
  f.s->OnTokens({&tok, 1}, {});
  EXPECT_EQ(f.s->block_pool().num_free(), free_before);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  auto t = f.s->tokens(1);
  EXPECT_EQ(t.size(), 65u);
  EXPECT_EQ(t.back(), 300);
  // Without a new draft the next decode is one token at position 64.
  StepPlan q = f.Step();
  EXPECT_EQ(q.items[0].num_draft, 0);
  EXPECT_EQ(q.items[0].start_pos, 64);
  EXPECT_EQ(q.items[0].num_tokens, 1);
}

TEST(SchedulerDraft, AcceptedDraftKeepsItsKv) {
  DraftFixture f(8, 16);
  f.s->SetDraft(1, 200);
  StepPlan p = f.Step();
  ASSERT_EQ(p.items[0].num_draft, 1);
  const std::vector<std::pair<uint64_t, int32_t>> toks = {{1, 200}, {1, 500}};
  f.s->OnTokens(toks, {});
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  auto t = f.s->tokens(1);
  EXPECT_EQ(t.size(), 66u);
  EXPECT_EQ(t[64], 200);
  EXPECT_EQ(t[65], 500);
  StepPlan q = f.Step();  // the next decode starts after both
  EXPECT_EQ(q.items[0].start_pos, 65);
  EXPECT_EQ(q.items[0].num_tokens, 1);
}

TEST(SchedulerDraft, NoDraftPastMaxTokensOrWithoutAFreeBlock) {
  {
    DraftFixture f(8, 2);  // one token generated, one left: a draft would make two
    f.s->SetDraft(1, 200);
    EXPECT_EQ(f.Step().items[0].num_draft, 0);
  }
  {
    // Three blocks: one each after the prefills, the third for the second sequence's decode
    // (position 64); the first one's draft would need a fourth: no draft, and no preemption.
    SchedulerLimits l = TestLimits();
    l.num_kv_blocks = 3;
    l.prefix_caching = false;
    auto c = Scheduler::Create(l, {testing::Tenant("t")});
    ASSERT_TRUE(c.ok());
    Scheduler& s = **c;
    ASSERT_TRUE(s.Add({.id = 1, .tenant = "t", .prompt = Tokens(1, 63), .max_tokens = 16}, 0)
                    .status.ok());
    ASSERT_TRUE(s.Add({.id = 2, .tenant = "t", .prompt = Tokens(2, 64), .max_tokens = 16}, 0)
                    .status.ok());
    StepPlan p = s.Plan(0);
    s.Commit(p);
    ASSERT_EQ(p.items.size(), 2u);
    const std::vector<std::pair<uint64_t, int32_t>> toks = {{1, 100}, {2, 101}};
    s.OnTokens(toks, {});
    ASSERT_EQ(s.block_pool().num_free(), 1);
    s.SetDraft(1, 200);
    StepPlan q = s.Plan(0);
    ASSERT_EQ(q.items.size(), 2u);
    EXPECT_EQ(q.items[0].num_draft + q.items[1].num_draft, 0);
    EXPECT_TRUE(q.preempted.empty());
    EXPECT_TRUE(s.Validate().ok()) << s.Validate();
  }
}

}  // namespace
}  // namespace dsinfer
