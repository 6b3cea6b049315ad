// MTP drafts in the scheduler: drafts ride on their sequence's decode (one more token each and
// the blocks they may need, within the token budget and max_tokens), count as KV only once
// accepted (left to right), and rejected drafts' slots are rolled back (a block that only they
// occupied returns to the pool); chained drafts' lookahead blocks are lent for one step.
#include <gtest/gtest.h>

#include "src/scheduler/scheduler.h"
#include "tests/scheduler_harness.h"

namespace dsinfer {
namespace {

using testing::TestLimits;
using testing::Tokens;

struct DraftFixture {
  std::unique_ptr<Scheduler> s;
  DraftFixture(int32_t blocks, int64_t max_tokens, int64_t prompt_len = 63,
               int64_t budget = 256, int32_t lookahead = 0) {
    SchedulerLimits l = TestLimits();
    l.num_kv_blocks = blocks;
    l.prefix_caching = false;
    l.max_batched_tokens = budget;
    l.max_running = static_cast<int32_t>(std::min<int64_t>(l.max_running, budget));
    l.mtp_lookahead = lookahead;
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
  f.s->SetDrafts(1, {200});
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
  f.s->SetDrafts(1, {200});
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
    f.s->SetDrafts(1, {200});
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
    s.SetDrafts(1, {200});
    StepPlan q = s.Plan(0);
    ASSERT_EQ(q.items.size(), 2u);
    EXPECT_EQ(q.items[0].num_draft + q.items[1].num_draft, 0);
    EXPECT_TRUE(q.preempted.empty());
    EXPECT_TRUE(s.Validate().ok()) << s.Validate();
  }
}

TEST(SchedulerDraft, DraftsAcceptedLeftToRightThenRolledBack) {
  DraftFixture f(8, 16);  // token 100 at position 63; drafts at 64, 65, 66 (block 1)
  const int32_t free_before = f.s->block_pool().num_free();
  f.s->SetDrafts(1, {200, 201, 202});
  StepPlan p = f.Step();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].num_draft, 3);
  EXPECT_EQ(p.items[0].num_tokens, 4);  // k + 1 rows
  EXPECT_EQ(p.num_batched_tokens, 4);
  EXPECT_EQ(std::vector<int32_t>(p.tokens(p.items[0]).begin(), p.tokens(p.items[0]).end()),
            (std::vector<int32_t>{100, 200, 201, 202}));
  EXPECT_EQ(p.items[0].num_blocks, 2);
  EXPECT_EQ(f.s->block_pool().num_free(), free_before - 1);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  // Two accepted (200, 201), the third rejected: 300 replaces it.
  const std::vector<std::pair<uint64_t, int32_t>> toks = {{1, 200}, {1, 201}, {1, 300}};
  f.s->OnTokens(toks, {});
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  auto t = f.s->tokens(1);
  ASSERT_EQ(t.size(), 67u);
  EXPECT_EQ((std::vector<int32_t>(t.end() - 4, t.end())), (std::vector<int32_t>{100, 200, 201, 300}));
  StepPlan q = f.Step();  // the next decode is 300's, at position 66
  EXPECT_EQ(q.items[0].start_pos, 66);
  EXPECT_EQ(q.items[0].num_tokens, 1);
  EXPECT_EQ(q.items[0].num_draft, 0);
}

TEST(SchedulerDraft, AllDraftsRejectedReleaseTheirBlock) {
  DraftFixture f(8, 16);
  const int32_t free_before = f.s->block_pool().num_free();
  f.s->SetDrafts(1, {200, 201, 202});
  StepPlan p = f.Step();
  ASSERT_EQ(p.items[0].num_draft, 3);
  const std::pair<uint64_t, int32_t> tok = {1, 300};
  f.s->OnTokens({&tok, 1}, {});
  EXPECT_EQ(f.s->block_pool().num_free(), free_before);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  EXPECT_EQ(f.s->tokens(1).size(), 65u);
  // Every draft accepted: the bonus token too, and the KV of all four rows counts.
  f.s->SetDrafts(1, {400, 401});
  StepPlan q = f.Step();
  ASSERT_EQ(q.items[0].num_draft, 2);
  EXPECT_EQ(q.items[0].start_pos, 64);
  const std::vector<std::pair<uint64_t, int32_t>> all = {{1, 400}, {1, 401}, {1, 402}};
  f.s->OnTokens(all, {});
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  EXPECT_EQ(f.s->tokens(1).size(), 68u);
  EXPECT_EQ(f.Step().items[0].start_pos, 67);
}

TEST(SchedulerDraft, DraftsCountAgainstTheTokenBudgetAndMaxTokens) {
  {
    DraftFixture f(8, 16, /*prompt_len=*/2, /*budget=*/3);  // the decode and two drafts
    f.s->SetDrafts(1, {200, 201, 202});
    StepPlan p = f.Step();
    EXPECT_EQ(p.items[0].num_draft, 2);
    EXPECT_EQ(p.num_batched_tokens, 3);
  }
  {
    DraftFixture f(8, 3);  // one token generated, two left: one draft and the token after it
    f.s->SetDrafts(1, {200, 201, 202});
    EXPECT_EQ(f.Step().items[0].num_draft, 1);
  }
}

TEST(SchedulerDraft, LookaheadBlocksAreLentForOneStep) {
  // Prompt 62, lookahead 2: the decode of position 62 and its draft (63) fill block 0; the
  // chained drafts' MTP rows at 64 and 65 need block 1 for the step only.
  DraftFixture f(8, 16, /*prompt_len=*/62, 256, /*lookahead=*/2);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  const int32_t free_before = f.s->block_pool().num_free();
  EXPECT_EQ(free_before, 7);
  f.s->SetDrafts(1, {200});
  StepPlan p = f.Step();
  ASSERT_EQ(p.items[0].num_draft, 1);
  EXPECT_EQ(p.items[0].lookahead, 2);
  EXPECT_EQ(p.items[0].num_blocks, 2);  // [0, 62 + 2 + 2)
  EXPECT_EQ(p.num_batched_tokens, 2);   // lookahead positions are no rows
  EXPECT_EQ(f.s->block_pool().num_free(), free_before - 1);
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  const std::vector<std::pair<uint64_t, int32_t>> toks = {{1, 200}, {1, 300}};  // accepted
  f.s->OnTokens(toks, {});
  EXPECT_EQ(f.s->block_pool().num_free(), free_before);  // 64 tokens computed: block 0 only
  EXPECT_TRUE(f.s->Validate().ok()) << f.s->Validate();
  EXPECT_EQ(f.Step().items[0].start_pos, 64);
}

TEST(SchedulerDraft, LookaheadNeverPreempts) {
  // Two blocks, two prompts of 62: positions 62 and 63 of each lookahead fit its own block; a
  // third position would need a third block, which only preempting the other could give.
  SchedulerLimits l = TestLimits();
  l.num_kv_blocks = 2;
  l.prefix_caching = false;
  l.mtp_lookahead = 3;
  auto c = Scheduler::Create(l, {testing::Tenant("t")});
  ASSERT_TRUE(c.ok()) << c.status();
  Scheduler& s = **c;
  ASSERT_TRUE(s.Add({.id = 1, .tenant = "t", .prompt = Tokens(1, 62), .max_tokens = 2}, 0)
                  .status.ok());
  ASSERT_TRUE(s.Add({.id = 2, .tenant = "t", .prompt = Tokens(2, 62), .max_tokens = 2}, 0)
                  .status.ok());
  StepPlan p = s.Plan(0);
  s.Commit(p);
  ASSERT_EQ(p.items.size(), 2u);
  for (const StepItem& item : p.items) {
    EXPECT_TRUE(item.sample);
    EXPECT_EQ(item.lookahead, 2);
    EXPECT_EQ(item.num_blocks, 1);
  }
  EXPECT_TRUE(p.preempted.empty());
  EXPECT_TRUE(s.Validate().ok()) << s.Validate();
  const std::vector<std::pair<uint64_t, int32_t>> toks = {{1, 100}, {2, 101}};
  s.OnTokens(toks, {});
  EXPECT_TRUE(s.Validate().ok()) << s.Validate();
  EXPECT_EQ(s.block_pool().num_free(), 0);
}

}  // namespace
}  // namespace dsinfer
