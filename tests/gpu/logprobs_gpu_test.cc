// The GPU kernels added for the one model program against their CPU twins: logprobs (chosen
// token and top alternatives), vocabulary-parallel embedding rows, row add, gather, scatter-add
// and expert counting.
#include <gtest/gtest.h>

#include "kernels/cpu/logprobs.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/logprobs.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;

TEST(LogprobsGpu, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  const int64_t V = 50000, R = 5, ld = V + 3;
  std::vector<float> logits = gpu_test::RandomBf16Values(R * ld, 11, 6.0f);
  logits[2 * ld + 17] = logits[2 * ld + 18] = 40.f;  // a tie: the smaller id comes first
  const std::vector<int32_t> rows = {4, 2, 0}, chosen = {7, 18, 49999};
  const int32_t top = 20;
  const int64_t n = 3;
  std::vector<float> want_lp(n), want_top_lp(n * top);
  std::vector<int32_t> want_ids(n * top);
  cpu::Logprobs({.logits = logits.data(), .ld = ld, .vocab = V, .rows = rows.data(),
                 .chosen = chosen.data(), .n = n, .top_n = top,
                 .chosen_logprob = want_lp.data(), .top_ids = want_ids.data(),
                 .top_logprobs = want_top_lp.data()});
  DeviceArray<float> dl(logits), dlp(n), dtop(n * top);
  DeviceArray<int32_t> drows(rows), dchosen(chosen), dids(n * top);
  CUDA_OK(cuda::Logprobs({.logits = dl.get(), .ld = ld, .vocab = V, .rows = drows.get(),
                          .chosen = dchosen.get(), .n = n, .top_n = top,
                          .chosen_logprob = dlp.get(), .top_ids = dids.get(),
                          .top_logprobs = dtop.get()},
                         nullptr));
  const auto lp = dlp.ToHost(), top_lp = dtop.ToHost();
  const auto ids = dids.ToHost();
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(lp[i], want_lp[i], 1e-4) << i;
  EXPECT_EQ(ids, want_ids);
  for (int64_t i = 0; i < n * top; ++i) EXPECT_NEAR(top_lp[i], want_top_lp[i], 1e-4) << i;
  EXPECT_EQ(ids[top], 17);  // row 2's tie
}

TEST(ElementwiseGpu, VocabularySliceRowsIndexAndCounts) {
  SKIP_WITHOUT_CUDA();
  // Embedding rows [100, 160) of a vocabulary: other ids give zero rows.
  const int64_t dim = 40, rows = 6;
  const auto table = gpu_test::RandomBf16Values(60 * dim, 3);
  const std::vector<int32_t> tokens = {100, 5, 159, 160, 130, 99};
  DeviceArray<__nv_bfloat16> dt(gpu_test::ToBf16(table));
  DeviceArray<int32_t> dtok(tokens);
  DeviceArray<float> dout(rows * (dim + 8));
  CUDA_OK(cuda::EmbeddingGather({.tokens = dtok.get(), .table = dt.get(), .out = dout.get(),
                                 .rows = rows, .dim = dim, .vocab_begin = 100, .table_rows = 60,
                                 .ld_out = dim + 8},
                                nullptr));
  const auto out = dout.ToHost();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i) {
      const int32_t t = tokens[r];
      const float want = (t >= 100 && t < 160) ? table[(t - 100) * dim + i] : 0.f;
      ASSERT_EQ(out[r * (dim + 8) + i], want) << r << " " << i;
    }
  // dst += src; gather rows; scatter-add rows (a repeated index sums in order).
  const int64_t cols = 300;
  const auto a = gpu_test::RandomBf16Values(4 * cols, 5), b = gpu_test::RandomBf16Values(4 * cols, 6);
  DeviceArray<float> da(a), db(b);
  CUDA_OK(cuda::AddRows({.dst = da.get(), .src = db.get(), .rows = 4, .cols = cols,
                         .ld_dst = cols, .ld_src = cols},
                        nullptr));
  const auto sum = da.ToHost();
  for (int64_t i = 0; i < 4 * cols; ++i) ASSERT_EQ(sum[i], a[i] + b[i]);
  const std::vector<int32_t> idx = {3, 0, 3};
  DeviceArray<int32_t> didx(idx);
  DeviceArray<float> g(3 * cols);
  CUDA_OK(cuda::GatherRows({.src = db.get(), .dst = g.get(), .index = didx.get(), .rows = 3,
                            .cols = cols, .ld_src = cols, .ld_dst = cols, .elem_bytes = 4},
                           nullptr));
  const auto gh = g.ToHost();
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(gh[r * cols + i], b[idx[r] * cols + i]);
  DeviceArray<float> acc(4 * cols);
  CUDA_OK(cuda::ScatterAddRowsF32({.src = g.get(), .dst = acc.get(), .index = didx.get(),
                                   .rows = 3, .cols = cols, .ld_src = cols, .ld_dst = cols},
                                  nullptr));
  const auto ah = acc.ToHost();
  for (int64_t i = 0; i < cols; ++i) {
    ASSERT_EQ(ah[3 * cols + i], (0.f + b[3 * cols + i]) + b[3 * cols + i]);
    ASSERT_EQ(ah[0 * cols + i], b[0 * cols + i]);
    ASSERT_EQ(ah[1 * cols + i], 0.f);
  }
  const std::vector<int32_t> ids = {1, 4, 4, -1, 9, 4};
  DeviceArray<int32_t> dids(ids);
  DeviceArray<int64_t> counts(5);
  CUDA_OK(cuda::CountIds(dids.get(), 6, counts.get(), 5, nullptr));
  EXPECT_EQ(counts.ToHost(), (std::vector<int64_t>{0, 1, 0, 0, 3}));
}

}  // namespace
}  // namespace dsinfer
