// The dsinfer metric set: names, help texts, buckets, and the pre-created children.
#include "src/metrics/server_metrics.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

// Registration happens once with constant names: a failure is a bug in this file.
template <typename T>
T* Must(absl::StatusOr<T*> family) {
  if (!family.ok()) {
    std::fprintf(stderr, "dsinfer: %s\n", std::string(family.status().message()).c_str());
  }
  DSINFER_CHECK(family.ok());
  return *family;
}

// Bucket bounds, seconds unless named otherwise. Latency ranges follow what vLLM users chart.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08,
                                          0.1,   0.25,  0.5,  0.75, 1,    2.5,  5,
                                          7.5,   10,    20,   40,   80,   160,  640};
const std::vector<double> kTpotBuckets = {0.005, 0.01,  0.015, 0.02, 0.025, 0.03, 0.04,
                                          0.05,  0.075, 0.1,   0.15, 0.2,   0.3,  0.4,
                                          0.5,   0.75,  1,     2.5,  5,     10,   20};
const std::vector<double> kE2eBuckets = {0.1, 0.25, 0.5, 1,  1.5, 2,   2.5, 5,   10,  15,
                                         20,  30,   40,  50, 60,  120, 240, 480, 960, 1920};
const std::vector<double> kQueueBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1,     2.5,   5,    10,    20,   30,  60,   120};
const std::vector<double> kStepBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1,
                                          0.15,  0.2,    0.3,   0.5,  1,    2.5,  5,    10};

std::vector<double> PowersOfTwo(double max) {
  std::vector<double> b;
  for (double v = 1; v <= max; v *= 2) b.push_back(v);
  return b;
}

}  // namespace

std::string_view RequestOutcomeName(RequestOutcome o) {
  switch (o) {
    case RequestOutcome::kCompleted:
      return "completed";
    case RequestOutcome::kCancelled:
      return "cancelled";
    case RequestOutcome::kDeadlineExceeded:
      return "deadline_exceeded";
    case RequestOutcome::kRejected:
      return "rejected";
    case RequestOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view RejectionReasonName(RejectionReason r) {
  switch (r) {
    case RejectionReason::kQueueFull:
      return "queue_full";
    case RejectionReason::kTenantQueueFull:
      return "tenant_queue_full";
    case RejectionReason::kRateLimited:
      return "rate_limited";
    case RejectionReason::kQueueTimeout:
      return "queue_timeout";
    case RejectionReason::kTooLong:
      return "too_long";
    case RejectionReason::kUnauthenticated:
      return "unauthenticated";
    case RejectionReason::kPriorityNotAllowed:
      return "priority_not_allowed";
    case RejectionReason::kDraining:
      return "draining";
    case RejectionReason::kInvalidRequest:
      return "invalid_request";
  }
  return "unknown";
}

ServerMetrics::ServerMetrics(const ServerMetricsOptions& options) {
  MetricRegistry& r = registry_;
  const std::vector<std::string> kTenantPriority = {"tenant", "priority"};

  auto* requests = Must(r.AddCounter("dsinfer_requests_total",
                                     "Requests finished, by tenant, priority and outcome.",
                                     {"tenant", "priority", "outcome"}));
  auto* queue_length = Must(r.AddGauge(
      "dsinfer_queue_length", "Requests waiting for admission to the running batch, by priority.",
      {"priority"}));
  sequences_running =
      &Must(r.AddGauge("dsinfer_sequences_running",
                       "Sequences in the running batch (vLLM num_requests_running)."))
           ->Get();
  sequences_waiting = &Must(r.AddGauge("dsinfer_sequences_waiting",
                                       "Sequences waiting to run, all priorities (vLLM "
                                       "num_requests_waiting)."))
                           ->Get();
  auto* kv_blocks = Must(r.AddGauge(
      "dsinfer_kv_cache_blocks",
      "KV cache blocks by state: used by running sequences, free, or cached (reusable prefix, "
      "evictable).",
      {"state"}));
  kv_usage_ =
      &Must(r.AddGauge("dsinfer_kv_cache_usage_ratio",
                       "Share of KV cache blocks in use, 0 to 1 (vLLM kv_cache_usage_perc)."))
           ->Get();
  prefix_cache_queried_tokens =
      &Must(
           r.AddCounter("dsinfer_prefix_cache_queried_tokens_total",
                        "Prompt tokens looked up in the prefix cache (vLLM prefix_cache_queries)."))
           ->Get();
  prefix_cache_hit_tokens =
      &Must(r.AddCounter("dsinfer_prefix_cache_hit_tokens_total",
                         "Prompt tokens found in the prefix cache (vLLM prefix_cache_hits)."))
           ->Get();
  spec_decode_draft_tokens =
      &Must(r.AddCounter("dsinfer_spec_decode_draft_tokens_total",
                         "MTP draft tokens verified by the main model (vLLM "
                         "spec_decode_num_draft_tokens)."))
           ->Get();
  spec_decode_accepted_tokens =
      &Must(r.AddCounter("dsinfer_spec_decode_accepted_tokens_total",
                         "MTP draft tokens the main model accepted (vLLM "
                         "spec_decode_num_accepted_tokens)."))
           ->Get();
  spec_decode_draft_at_ = Must(r.AddCounter(
      "dsinfer_spec_decode_draft_tokens_per_position_total",
      "MTP draft tokens verified, by draft position (0: a sequence's first draft of a step).",
      {"position"}));
  spec_decode_accepted_at_ = Must(r.AddCounter(
      "dsinfer_spec_decode_accepted_tokens_per_position_total",
      "MTP draft tokens accepted, by draft position (vLLM "
      "spec_decode_num_accepted_tokens_per_pos).",
      {"position"}));
  auto* prompt_tokens = Must(r.AddCounter("dsinfer_prompt_tokens_total",
                                          "Prompt tokens processed, by tenant.", {"tenant"}));
  auto* generation_tokens = Must(
      r.AddCounter("dsinfer_generation_tokens_total", "Tokens generated, by tenant.", {"tenant"}));
  auto* ttft = Must(r.AddHistogram("dsinfer_time_to_first_token_seconds",
                                   "Time from arrival to the first generated token.",
                                   kTenantPriority, kTtftBuckets));
  auto* tpot = Must(r.AddHistogram(
      "dsinfer_time_per_output_token_seconds",
      "Time between consecutive generated tokens of a request (inter-token latency).",
      kTenantPriority, kTpotBuckets));
  auto* e2e = Must(r.AddHistogram("dsinfer_e2e_request_latency_seconds",
                                  "Time from arrival to the last token of finished requests.",
                                  kTenantPriority, kE2eBuckets));
  auto* queue_time = Must(r.AddHistogram("dsinfer_request_queue_time_seconds",
                                         "Time a request waited before it first ran.",
                                         kTenantPriority, kQueueBuckets));
  batch_tokens_ = &Must(r.AddHistogram("dsinfer_batch_tokens",
                                       "Tokens per engine step (prefill chunks and decodes).", {},
                                       PowersOfTwo(16384)))
                       ->Get();
  batch_sequences_ = &Must(r.AddHistogram("dsinfer_batch_sequences", "Sequences per engine step.",
                                          {}, PowersOfTwo(1024)))
                          ->Get();
  step_seconds_ = &Must(r.AddHistogram("dsinfer_step_duration_seconds",
                                       "Wall time of one engine step.", {}, kStepBuckets))
                       ->Get();
  auto* preemptions = Must(r.AddCounter(
      "dsinfer_preemptions_total",
      "Running sequences preempted to make room (recomputed later), by the victim's priority.",
      {"priority"}));
  auto* rejections = Must(r.AddCounter("dsinfer_rejections_total",
                                       "Requests refused at admission, by reason.", {"reason"}));
  auto* api_calls = Must(r.AddCounter(
      "dsinfer_api_calls_total",
      "Generation calls (gRPC Generate, OpenAI completions) by front end and final status code.",
      {"protocol", "code"}));
  for (int p = 0; p < kNumApiProtocols; ++p) {
    for (int c = 0; c < kNumStatusCodes; ++c) {
      api_calls_[p][c] = &api_calls->WithLabels(
          {p == 0 ? "grpc" : "openai", absl::StatusCodeToString(static_cast<absl::StatusCode>(c))});
    }
  }
  auto* expert_tokens = Must(r.AddCounter("dsinfer_moe_expert_tokens_total",
                                          "Tokens routed to each routed expert of each MoE layer.",
                                          {"layer", "expert"}));
  auto* imbalance = Must(r.AddGauge(
      "dsinfer_moe_expert_load_imbalance_ratio",
      "Max over mean of tokens per expert in a MoE layer's latest step (1 = perfectly even).",
      {"layer"}));
  auto* model_info =
      Must(r.AddGauge("dsinfer_model_info", "The served model; the value is always 1.",
                      {"model", "dtype", "backend"}));

  model_info->WithLabels({options.model_name, options.dtype, options.backend}).Set(1);

  for (int p = 0; p < kNumPriorities; ++p) {
    const std::string_view pn = PriorityName(static_cast<Priority>(p));
    queue_length_[p] = &queue_length->WithLabels({pn});
    preemptions_[p] = &preemptions->WithLabels({pn});
  }
  for (int i = 0; i < kNumRejectionReasons; ++i) {
    rejections_[i] = &rejections->WithLabels({RejectionReasonName(static_cast<RejectionReason>(i))});
  }
  kv_used_ = &kv_blocks->WithLabels({"used"});
  kv_free_ = &kv_blocks->WithLabels({"free"});
  kv_cached_ = &kv_blocks->WithLabels({"cached"});

  tenant_ids_ = options.tenants;
  std::sort(tenant_ids_.begin(), tenant_ids_.end());
  tenant_ids_.erase(std::unique(tenant_ids_.begin(), tenant_ids_.end()), tenant_ids_.end());
  tenants_.resize(tenant_ids_.size());
  for (size_t t = 0; t < tenant_ids_.size(); ++t) {
    const std::string& id = tenant_ids_[t];
    TenantMetrics& m = tenants_[t];
    m.prompt_tokens = &prompt_tokens->WithLabels({id});
    m.generation_tokens = &generation_tokens->WithLabels({id});
    for (int p = 0; p < kNumPriorities; ++p) {
      const std::string_view pn = PriorityName(static_cast<Priority>(p));
      for (int o = 0; o < kNumRequestOutcomes; ++o) {
        m.requests[p][o] =
            &requests->WithLabels({id, pn, RequestOutcomeName(static_cast<RequestOutcome>(o))});
      }
      m.time_to_first_token[p] = &ttft->WithLabels({id, pn});
      m.time_per_output_token[p] = &tpot->WithLabels({id, pn});
      m.e2e_latency[p] = &e2e->WithLabels({id, pn});
      m.queue_time[p] = &queue_time->WithLabels({id, pn});
    }
  }

  num_experts_ = options.num_experts;
  if (num_experts_ > 0) {
    for (int layer : options.moe_layers) {
      if (layer < 0) continue;
      if (static_cast<size_t>(layer) >= moe_index_.size()) moe_index_.resize(layer + 1, -1);
      if (moe_index_[layer] >= 0) continue;
      moe_index_[layer] = static_cast<int>(expert_tokens_.size());
      const std::string ln = absl::StrCat(layer);
      std::vector<Counter*>& row = expert_tokens_.emplace_back();
      for (int e = 0; e < num_experts_; ++e) {
        row.push_back(&expert_tokens->WithLabels({ln, absl::StrCat(e)}));
      }
      imbalance_.push_back(&imbalance->WithLabels({ln}));
    }
  }
}

const TenantMetrics* ServerMetrics::Tenant(std::string_view id) const {
  auto it = std::lower_bound(tenant_ids_.begin(), tenant_ids_.end(), id,
                             [](const std::string& a, std::string_view b) { return a < b; });
  if (it == tenant_ids_.end() || *it != id) return nullptr;
  return &tenants_[static_cast<size_t>(it - tenant_ids_.begin())];
}

void ServerMetrics::SetKvCacheBlocks(int64_t used, int64_t free, int64_t cached) {
  kv_used_->Set(static_cast<double>(used));
  kv_free_->Set(static_cast<double>(free));
  kv_cached_->Set(static_cast<double>(cached));
  const int64_t total = used + free + cached;
  kv_usage_->Set(total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0);
}

void ServerMetrics::ObserveStep(int64_t batch_tokens, int64_t batch_sequences, double seconds) {
  batch_tokens_->Observe(static_cast<double>(batch_tokens));
  batch_sequences_->Observe(static_cast<double>(batch_sequences));
  step_seconds_->Observe(seconds);
}

void ServerMetrics::RecordMoeLoad(int layer, std::span<const int64_t> tokens_per_expert) {
  if (layer < 0 || static_cast<size_t>(layer) >= moe_index_.size() || moe_index_[layer] < 0 ||
      tokens_per_expert.size() != static_cast<size_t>(num_experts_)) {
    return;
  }
  const std::vector<Counter*>& row = expert_tokens_[moe_index_[layer]];
  int64_t total = 0, max = 0;
  for (size_t e = 0; e < tokens_per_expert.size(); ++e) {
    const int64_t n = tokens_per_expert[e];
    if (n > 0) row[e]->Inc(static_cast<double>(n));
    total += n;
    max = std::max(max, n);
  }
  if (total > 0) {
    const double mean = static_cast<double>(total) / static_cast<double>(num_experts_);
    imbalance_[moe_index_[layer]]->Set(static_cast<double>(max) / mean);
  }
}

Counter& ServerMetrics::SpecDecodeDraftsAt(int position) {
  return spec_decode_draft_at_->WithLabels({std::to_string(position)});
}

Counter& ServerMetrics::SpecDecodeAcceptedAt(int position) {
  return spec_decode_accepted_at_->WithLabels({std::to_string(position)});
}

}  // namespace dsinfer
