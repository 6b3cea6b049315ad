// The step plan every backend reads: which sequences attend in decode form and the queries,
// block tables and causal lengths it gives them.
#include "src/model/step_input.h"

#include <gtest/gtest.h>

#include <vector>

namespace dsinfer {
namespace {

TEST(StepInput, DecodesAndDraftsAreDecodeQueriesPromptChunksArePrefill) {
  const std::vector<int32_t> one = {7}, two = {7, 8}, three = {1, 2, 3};
  const std::vector<int32_t> table_a = {4, 5}, table_b = {6}, table_c = {0, 1, 2};
  std::vector<RunnerSequence> seqs(4);
  seqs[0] = {.tokens = one, .start_pos = 3, .block_table = table_b, .sample = true};
  // A token and its draft after 7 cached tokens (block size 4: positions 7 and 8 span blocks).
  seqs[1] = {.tokens = two, .start_pos = 7, .block_table = table_c, .sample = true,
             .num_draft = 1};
  // Two new tokens without a draft: a prompt chunk.
  seqs[2] = {.tokens = two, .start_pos = 3, .block_table = table_a, .sample = true};
  seqs[3] = {.tokens = three, .start_pos = 0, .block_table = table_a, .sample = true};
  auto st = BuildStepInput(seqs, {.vocab_size = 16, .max_positions = 64, .num_blocks = 8,
                                  .block_size = 4});
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->decode_seqs, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(st->prefill_seqs, (std::vector<int32_t>{2, 3}));
  EXPECT_FALSE(st->all_decode);
  ASSERT_EQ(st->max_blocks, 3);
  EXPECT_EQ(st->decode_rows, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(st->decode_lens, (std::vector<int32_t>{4, 8, 9}));
  // Each query's table covers its own length; the rest is padding.
  EXPECT_EQ(st->decode_tables, (std::vector<int32_t>{6, 0, 0, 0, 1, 0, 0, 1, 2}));
}

TEST(StepInput, AllDecodeOnlyWhenEverySequenceHasOneNewToken) {
  const std::vector<int32_t> one = {7}, two = {7, 8}, table = {0, 1};
  std::vector<RunnerSequence> seqs(1);
  seqs[0] = {.tokens = one, .start_pos = 3, .block_table = table, .sample = true};
  const StepLimits limits{.vocab_size = 16, .max_positions = 64, .num_blocks = 8, .block_size = 4};
  auto st = BuildStepInput(seqs, limits);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->all_decode);
  seqs[0] = {.tokens = two, .start_pos = 3, .block_table = table, .sample = true, .num_draft = 1};
  st = BuildStepInput(seqs, limits);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->all_decode);  // backends whose fast path assumes one token per sequence
  EXPECT_EQ(st->decode_seqs.size(), 1u);
  EXPECT_EQ(st->decode_rows.size(), 2u);
}

// k drafts: k + 1 decode queries, each attending its own causal prefix; more than
// kMaxMtpDraftTokens, or drafts without sampling, are refused.
TEST(StepInput, KDraftsAreKPlusOneDecodeQueries) {
  const std::vector<int32_t> four = {7, 8, 9, 10}, table = {0, 1, 2};
  const StepLimits limits{.vocab_size = 16, .max_positions = 64, .num_blocks = 8, .block_size = 4};
  std::vector<RunnerSequence> seqs = {
      {.tokens = four, .start_pos = 6, .block_table = table, .sample = true, .num_draft = 3}};
  auto st = BuildStepInput(seqs, limits);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->decode_seqs, (std::vector<int32_t>{0}));
  EXPECT_EQ(st->decode_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(st->decode_lens, (std::vector<int32_t>{7, 8, 9, 10}));
  EXPECT_EQ(st->logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(st->last_logit, (std::vector<int32_t>{3}));
  seqs[0].sample = false;
  EXPECT_EQ(BuildStepInput(seqs, limits).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> many(kMaxMtpDraftTokens + 2, 5), wide = {0, 1, 2, 3, 4};
  seqs[0] = {.tokens = many, .start_pos = 6, .block_table = wide, .sample = true,
             .num_draft = kMaxMtpDraftTokens};
  EXPECT_TRUE(BuildStepInput(seqs, limits).ok());
  seqs[0].num_draft = kMaxMtpDraftTokens + 1;
  EXPECT_EQ(BuildStepInput(seqs, limits).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsinfer
