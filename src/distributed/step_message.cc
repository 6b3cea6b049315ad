#include "src/distributed/step_message.h"

#include <cstring>

namespace dsinfer {
namespace {

// Per sequence: n_tokens, start_pos, n_blocks, all_logits (4 x int64), then the ids.
constexpr int64_t kSeqHeader = 4;

void Put(std::vector<char>* out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out->size();
  out->resize(at + n);
  std::memcpy(out->data() + at, p, n);
}

}  // namespace

std::vector<char> EncodeStep(absl::Span<const RunnerSequence> seqs) {
  std::vector<char> out;
  const int64_t n = static_cast<int64_t>(seqs.size());
  Put(&out, &n, sizeof(n));
  for (const RunnerSequence& s : seqs) {
    const int64_t h[kSeqHeader] = {static_cast<int64_t>(s.tokens.size()), s.start_pos,
                                   static_cast<int64_t>(s.block_table.size()), s.all_logits};
    Put(&out, h, sizeof(h));
    Put(&out, s.tokens.data(), s.tokens.size() * sizeof(int32_t));
    Put(&out, s.block_table.data(), s.block_table.size() * sizeof(int32_t));
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
  int64_t n = 0;
  if (!take(&n, sizeof(n)) || n < 0 || n > static_cast<int64_t>(bytes.size()))
    return absl::InvalidArgumentError("step message: bad sequence count");
  DecodedStep step;
  std::vector<int64_t> headers(n * kSeqHeader);
  std::vector<std::pair<size_t, size_t>> offsets;  // into tokens, tables
  for (int64_t s = 0; s < n; ++s) {
    int64_t* h = headers.data() + s * kSeqHeader;
    if (!take(h, kSeqHeader * sizeof(int64_t)) || h[0] < 0 || h[2] < 0 ||
        (h[0] + h[2]) * 4 > static_cast<int64_t>(bytes.size() - at)) {
      return absl::InvalidArgumentError("step message: truncated sequence");
    }
    offsets.push_back({step.tokens.size(), step.tables.size()});
    step.tokens.resize(step.tokens.size() + h[0]);
    step.tables.resize(step.tables.size() + h[2]);
    take(step.tokens.data() + offsets.back().first, h[0] * sizeof(int32_t));
    take(step.tables.data() + offsets.back().second, h[2] * sizeof(int32_t));
  }
  if (at != bytes.size()) return absl::InvalidArgumentError("step message: trailing bytes");
  for (int64_t s = 0; s < n; ++s) {
    const int64_t* h = headers.data() + s * kSeqHeader;
    step.seqs.push_back(
        {.tokens = absl::MakeConstSpan(step.tokens.data() + offsets[s].first, h[0]),
         .start_pos = h[1],
         .block_table = absl::MakeConstSpan(step.tables.data() + offsets[s].second, h[2]),
         .all_logits = h[3] != 0});
  }
  return step;
}

}  // namespace dsinfer
