#include "src/distributed/step_message.h"

#include <cstring>

namespace dsinfer {
namespace {

// Per sequence: n_tokens, start_pos, n_blocks, all_logits, sample, logprobs, num_draft,
// next_token, draft rows (9 x int64), the ids, the block table, then when sample its sampling
// row and its draft_sampling rows (each: RowHeader, its penalty tokens, then its counts).
constexpr int64_t kSeqHeader = 9;

// A SamplingRow's fixed part as sent: the floats, top_k, the uniform and the penalty count.
struct RowHeader {
  float temperature, top_p, min_p, repetition_penalty, frequency_penalty, presence_penalty;
  int32_t top_k;
  int32_t num_penalty;
  double uniform;
};
static_assert(sizeof(RowHeader) == 40);

void Put(std::vector<char>* out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out->size();
  out->resize(at + n);
  std::memcpy(out->data() + at, p, n);
}

void PutRow(std::vector<char>* out, const SamplingRow& r) {
  const RowHeader h{r.temperature,       r.top_p,
                    r.min_p,             r.repetition_penalty,
                    r.frequency_penalty, r.presence_penalty,
                    r.top_k,             static_cast<int32_t>(r.penalty_tokens.size()),
                    r.uniform};
  Put(out, &h, sizeof(h));
  Put(out, r.penalty_tokens.data(), r.penalty_tokens.size() * sizeof(int32_t));
  // Counts are empty or one per penalty token (Sampler's parallel arrays).
  const int32_t has_counts = r.penalty_counts.empty() ? 0 : 1;
  Put(out, &has_counts, sizeof(has_counts));
  Put(out, r.penalty_counts.data(), r.penalty_counts.size() * sizeof(int32_t));
}

}  // namespace

std::vector<char> EncodeStep(absl::Span<const RunnerSequence> seqs, int64_t sample_vocab) {
  std::vector<char> out;
  const int64_t n = static_cast<int64_t>(seqs.size());
  Put(&out, &n, sizeof(n));
  Put(&out, &sample_vocab, sizeof(sample_vocab));
  for (const RunnerSequence& s : seqs) {
    const int64_t h[kSeqHeader] = {static_cast<int64_t>(s.tokens.size()),
                                   s.start_pos,
                                   static_cast<int64_t>(s.block_table.size()),
                                   s.all_logits,
                                   s.sample,
                                   s.logprobs,
                                   s.num_draft,
                                   s.next_token,
                                   static_cast<int64_t>(s.draft_sampling.size())};
    Put(&out, h, sizeof(h));
    Put(&out, s.tokens.data(), s.tokens.size() * sizeof(int32_t));
    Put(&out, s.block_table.data(), s.block_table.size() * sizeof(int32_t));
    if (!s.sample) continue;
    PutRow(&out, s.sampling);
    for (const SamplingRow& r : s.draft_sampling) PutRow(&out, r);
  }
  return out;
}

absl::StatusOr<DecodedStep> DecodeStep(absl::Span<const char> bytes) {
  size_t at = 0;
  auto take = [&](void* dst, size_t n) {
    if (bytes.size() - at < n) return false;
    std::memcpy(dst, bytes.data() + at, n);
    at += n;
    return true;
  };
  const auto bad = [](const char* what) {
    return absl::InvalidArgumentError(std::string("step message: ") + what);
  };
  int64_t n = 0;
  DecodedStep step;
  if (!take(&n, sizeof(n)) || n < 0 || n > static_cast<int64_t>(bytes.size()) ||
      !take(&step.sample_vocab, sizeof(int64_t))) {
    return bad("bad sequence count");
  }
  std::vector<int64_t> headers(n * kSeqHeader);
  struct Offsets {
    size_t tokens, tables, rows;
  };
  struct RowPenalty {
    size_t tokens = 0, n = 0, counts = 0;
    bool has_counts = false;
  };
  std::vector<Offsets> offsets;
  std::vector<RowPenalty> row_penalty;
  for (int64_t s = 0; s < n; ++s) {
    int64_t* h = headers.data() + s * kSeqHeader;
    if (!take(h, kSeqHeader * sizeof(int64_t)) || h[0] < 0 || h[2] < 0 ||
        (h[0] + h[2]) * 4 > static_cast<int64_t>(bytes.size() - at)) {
      return bad("truncated sequence");
    }
    if (h[8] < 0 || h[8] > h[0]) return bad("bad draft rows");
    offsets.push_back({step.tokens.size(), step.tables.size(), step.rows.size()});
    step.tokens.resize(step.tokens.size() + h[0]);
    step.tables.resize(step.tables.size() + h[2]);
    take(step.tokens.data() + offsets.back().tokens, h[0] * sizeof(int32_t));
    take(step.tables.data() + offsets.back().tables, h[2] * sizeof(int32_t));
    if (h[4] == 0) continue;
    for (int64_t j = 0; j <= h[8]; ++j) {
      RowHeader rh;
      if (!take(&rh, sizeof(rh)) || rh.num_penalty < 0 ||
          int64_t{rh.num_penalty} * 4 > static_cast<int64_t>(bytes.size() - at)) {
        return bad("truncated sampling row");
      }
      SamplingRow r{.temperature = rh.temperature,
                    .top_k = rh.top_k,
                    .top_p = rh.top_p,
                    .min_p = rh.min_p,
                    .repetition_penalty = rh.repetition_penalty,
                    .frequency_penalty = rh.frequency_penalty,
                    .presence_penalty = rh.presence_penalty,
                    .uniform = rh.uniform};
      RowPenalty p{.tokens = step.penalties.size(), .n = static_cast<size_t>(rh.num_penalty)};
      step.penalties.resize(step.penalties.size() + p.n);
      take(step.penalties.data() + p.tokens, p.n * sizeof(int32_t));
      int32_t has_counts = 0;
      if (!take(&has_counts, sizeof(has_counts)) || has_counts < 0 || has_counts > 1 ||
          static_cast<int64_t>(has_counts * p.n * 4) > static_cast<int64_t>(bytes.size() - at)) {
        return bad("truncated penalty counts");
      }
      p.has_counts = has_counts != 0;
      p.counts = step.penalties.size();
      if (p.has_counts) {
        step.penalties.resize(step.penalties.size() + p.n);
        take(step.penalties.data() + p.counts, p.n * sizeof(int32_t));
      }
      step.rows.push_back(r);
      row_penalty.push_back(p);
    }
  }
  if (at != bytes.size()) return bad("trailing bytes");
  // Spans last: the vectors do not move any more.
  for (size_t i = 0; i < step.rows.size(); ++i) {
    const RowPenalty& p = row_penalty[i];
    step.rows[i].penalty_tokens = absl::MakeConstSpan(step.penalties.data() + p.tokens, p.n);
    if (p.has_counts)
      step.rows[i].penalty_counts = absl::MakeConstSpan(step.penalties.data() + p.counts, p.n);
  }
  for (int64_t s = 0; s < n; ++s) {
    const int64_t* h = headers.data() + s * kSeqHeader;
    RunnerSequence q{
        .tokens = absl::MakeConstSpan(step.tokens.data() + offsets[s].tokens, h[0]),
        .start_pos = h[1],
        .block_table = absl::MakeConstSpan(step.tables.data() + offsets[s].tables, h[2]),
        .sample = h[4] != 0,
        .logprobs = static_cast<int32_t>(h[5]),
        .all_logits = h[3] != 0,
        .num_draft = static_cast<int32_t>(h[6]),
        .next_token = static_cast<int32_t>(h[7])};
    if (q.sample) {
      q.sampling = step.rows[offsets[s].rows];
      q.draft_sampling = absl::MakeConstSpan(step.rows.data() + offsets[s].rows + 1, h[8]);
    }
    step.seqs.push_back(q);
  }
  return step;
}

}  // namespace dsinfer
