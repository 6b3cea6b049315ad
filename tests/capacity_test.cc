// Capacity planner (src/capacity/): cost model against hand-computed values, the simulator
// driving the real scheduler (idle, under-loaded, overloaded, priorities), the replica search,
// and input errors that name their field.
#include <cmath>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "src/capacity/cost_model.h"
#include "src/capacity/plan_input.h"
#include "src/capacity/simulator.h"
#include "src/capacity/sizing.h"
#include "src/model/deepseek_program.h"
#include "src/model/v4_program.h"

namespace dsinfer::capacity {
namespace {

// A small DeepSeek-V3-shaped model: 2 layers (1 dense, 1 MoE with 8 experts, 2 per token).
constexpr char kModel[] = R"(
model:
  weight_bytes: 2
  kv_bytes: 2
  activation_bytes: 2
  config_json:
    model_type: deepseek_v3
    hidden_size: 64
    intermediate_size: 128
    moe_intermediate_size: 32
    num_hidden_layers: 2
    num_attention_heads: 4
    q_lora_rank: 48
    kv_lora_rank: 32
    qk_nope_head_dim: 16
    qk_rope_head_dim: 8
    v_head_dim: 16
    n_routed_experts: 8
    n_shared_experts: 1
    num_experts_per_tok: 2
    n_group: 1
    topk_group: 1
    first_k_dense_replace: 1
    moe_layer_freq: 1
    max_position_embeddings: 4096
    vocab_size: 1000
    eos_token_id: 1
)";

// Measured step cost: 10 ms + 0.1 ms per token + 1 ms per sequence + 1 us per context token.
constexpr char kMeasured[] = R"(
scheduler:
  max_batched_tokens: 512
  max_running: 32
  max_waiting: 64
  max_queue_seconds: 20
  prefill_chunk: 256
  num_kv_blocks: 256
deployments:
  - name: cpu
    measured: {step_seconds: 0.010, token_seconds: 0.0001, sequence_seconds: 0.001,
               context_token_seconds: 0.000001}
simulation: {duration_seconds: 400, warmup_seconds: 40, drain_seconds: 200, seed: 7}
)";

PlanInput Parse(const std::string& yaml) {
  absl::StatusOr<PlanInput> in = ParsePlanInput(yaml, ".");
  EXPECT_TRUE(in.ok()) << in.status();
  return in.ok() ? *std::move(in) : PlanInput{};
}

// One interactive service at `rate` with fixed lengths, on the measured deployment.
std::string OneService(double rate, int prompt, int output) {
  return std::string(kModel) + kMeasured +
         "services:\n  - {name: county, rate: " + std::to_string(rate) +
         ", prompt_tokens: " + std::to_string(prompt) +
         ", output_tokens: " + std::to_string(output) + "}\n";
}

SimResult SimulateOne(const PlanInput& in, double scale = 1) {
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  EXPECT_TRUE(cost.ok()) << cost.status();
  absl::StatusOr<SimResult> r = Simulate(in, in.deployments[0], *cost, {.rate_scale = scale});
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

TEST(CostModel, FootprintMatchesHandCount) {
  const PlanInput in = Parse(std::string(kModel) + kMeasured +
                             "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]");
  const ModelFootprint f = FootprintOf(in.model);
  // Attention per layer: q 64*48 + 48*4*24, kv_a 64*(32+8), kv_b 32*4*(16+16), o 4*16*64.
  const double attn = 64 * 48 + 48 * 4 * 24 + 64 * 40 + 32 * 4 * 32 + 4 * 16 * 64;
  EXPECT_DOUBLE_EQ(f.attention_params, 2 * attn);
  EXPECT_DOUBLE_EQ(f.dense_mlp_params, 3 * 64 * 128);
  EXPECT_EQ(f.moe_layers, 1);
  EXPECT_DOUBLE_EQ(f.expert_params, 3 * 64 * 32);
  EXPECT_DOUBLE_EQ(f.shared_expert_params, 3 * 64 * 32);
  EXPECT_DOUBLE_EQ(f.router_params, 64 * 8);
  EXPECT_DOUBLE_EQ(f.kv_elements_per_token, 2 * (32 + 8));
  EXPECT_DOUBLE_EQ(f.ActiveParamsPerToken(),
                   2 * attn + 3 * 64 * 128 + 3 * 64 * 32 + 64 * 8 + 2 * 3 * 64 * 32);
  EXPECT_DOUBLE_EQ(f.TotalParams(), 2 * attn + 3 * 64 * 128 + 3 * 64 * 32 + 64 * 8 +
                                        8 * 3 * 64 * 32 + 2 * 1000 * 64);
}

TEST(CostModel, DeepSeekV3Footprint) {
  const PlanInput in =
      Parse(std::string(
          "model: {config: " DSINFER_SOURCE_DIR "/configs/plan/deepseek-v3-config.json}\n"
          "deployments: [{name: x, measured: {step_seconds: 1}, scheduler: {num_kv_blocks: 1}}]\n"
          "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n"));
  const ModelFootprint f = FootprintOf(in.model);
  EXPECT_NEAR(f.TotalParams() / 1e9, 671, 1);  // 671 B without the MTP layer
  EXPECT_NEAR((f.ActiveParamsPerToken() + f.lm_head_params) / 1e9, 37, 1.5);
  EXPECT_DOUBLE_EQ(f.kv_elements_per_token * 2, 61 * 576 * 2);
}

// DeepSeek-V3.2 keeps two caches: the bf16 latent row and, per layer, the FP8 index key (128
// e4m3 codes + one f32 scale). The planner's bytes per token are both, from KvCacheSpec.
TEST(CostModel, DeepSeekV32KvBytesCountBothCaches) {
  const PlanInput in =
      Parse(std::string(
          "model: {config: " DSINFER_SOURCE_DIR "/configs/plan/deepseek-v3.2-config.json}\n"
          "deployments: [{name: x, measured: {step_seconds: 1}, scheduler: {num_kv_blocks: 1}}]\n"
          "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n"));
  const ModelFootprint f = FootprintOf(in.model);
  EXPECT_DOUBLE_EQ(f.kv_elements_per_token, 61 * 576);
  EXPECT_DOUBLE_EQ(f.kv_index_bytes_per_token, 61 * (128 + 4));
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_DOUBLE_EQ(cost->kv_bytes_per_token(), 61 * (576 * 2 + 128 + 4));
  EXPECT_EQ(MlaKvCacheSpec(in.model, KvDType::kBF16).bytes_per_token(), 61 * (576 * 2 + 132));
  // The indexer's weights: wq_b 64*128 x 1536, wk 128 x 7168, k_norm 2 x 128, weights_proj
  // 64 x 7168 per layer, on top of V3's 671 B.
  EXPECT_NEAR(f.TotalParams() / 1e9, 671 + 61 * (64 * 128 * 1536 + 128 * 7170 + 64 * 7168) / 1e9,
              1);
}

// DeepSeek-V4 (V4-Flash dims): the planner's KV bytes per token are the V4 program's cache row
// (V4KvCacheSpec, f32 whatever the plan's kv_bytes): layers x (6 head_dim + 5 index_head_dim)
// x 4 bytes, with CSA the widest layer type (window K=V, compressor inputs, compressed entry,
// indexer inputs, compressed index key).
TEST(CostModel, DeepSeekV4KvBytesFollowTheRowFormula) {
  const PlanInput in =
      Parse(std::string(
          "model: {config: " DSINFER_SOURCE_DIR "/configs/plan/deepseek-v4-flash-config.json}\n"
          "deployments: [{name: x, measured: {step_seconds: 1}, scheduler: {num_kv_blocks: 1}}]\n"
          "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n"));
  ASSERT_TRUE(in.model.IsV4());
  const ModelFootprint f = FootprintOf(in.model);
  const double formula = 43.0 * (6 * 512 + 5 * 128) * 4;
  EXPECT_DOUBLE_EQ(f.kv_elements_per_token, 0);
  EXPECT_DOUBLE_EQ(f.kv_index_bytes_per_token, formula);
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_DOUBLE_EQ(cost->kv_bytes_per_token(), formula);
  EXPECT_EQ(V4KvCacheSpec(in.model).bytes_per_token(), static_cast<int64_t>(formula));
  // Every layer is MoE (hash or top-k routed), one shared expert each.
  EXPECT_EQ(f.moe_layers, 43);
  EXPECT_DOUBLE_EQ(f.dense_mlp_params, 0);
}

// V4-Flash at tp 8 x ep 8: every GPU keeps the whole cache row (the one K=V head, the
// compressors and the indexer are replicated, so the row formula above holds per GPU), and its
// weights are the V4 schema's share of rank 0: about an eighth of the model plus what every rank
// replicates (q latent, K=V head, compressors, indexer, mHC, routers: ~2% of V4-Flash).
TEST(CostModel, DeepSeekV4ShardedHoldsTheWholeRowAndAnEighthOfTheWeights) {
  const PlanInput in =
      Parse(std::string(
          "model: {config: " DSINFER_SOURCE_DIR "/configs/plan/deepseek-v4-flash-config.json}\n"
          "deployments: [{name: x, gpu: {memory: 141 GB, memory_bandwidth: 4.8 TB/s,"
          " flops: 900 TFLOP/s, link_bandwidth: 450 GB/s}, layout: {tp: 8, ep: 8}}]\n"
          "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n"));
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_DOUBLE_EQ(cost->kv_bytes_per_token(), 43.0 * (6 * 512 + 5 * 128) * 4);
  EXPECT_EQ(ModelKvCacheSpec(in.model, KvDType::kBF16, ShardLayout{.rank = 5, .tp = 8, .ep = 8})
                .bytes_per_token(),
            43 * (6 * 512 + 5 * 128) * 4);
  const bool fp8 = in.precision.weight_bytes == 1;
  absl::StatusOr<int64_t> one = ModelStoredBytes(in.model, ShardLayout{}, nullptr, fp8);
  absl::StatusOr<int64_t> rank0 =
      ModelStoredBytes(in.model, ShardLayout{.rank = 0, .tp = 8, .ep = 8}, nullptr, fp8);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(rank0.ok()) << rank0.status();
  EXPECT_DOUBLE_EQ(cost->weight_bytes_per_gpu(), static_cast<double>(*rank0));
  EXPECT_GT(8.0 * static_cast<double>(*rank0), static_cast<double>(*one));
  EXPECT_LT(8.0 * static_cast<double>(*rank0), 1.05 * static_cast<double>(*one));
  // A layout the grouped output projection cannot split is refused, naming the field.
  absl::StatusOr<int64_t> bad =
      ModelStoredBytes(in.model, ShardLayout{.rank = 0, .tp = 16, .ep = 16}, nullptr, fp8);
  EXPECT_NE(bad.status().message().find("o_groups (8) is not divisible by tp (16)"),
            std::string::npos)
      << bad.status();
}

// A dense distill: GQA attention (no latent row), no experts.
TEST(CostModel, R1DistillQwen7BFootprint) {
  const PlanInput in =
      Parse(std::string(
          "model: {config: " DSINFER_SOURCE_DIR "/configs/plan/r1-distill-qwen-7b-config.json}\n"
          "deployments: [{name: x, measured: {step_seconds: 1}, scheduler: {num_kv_blocks: 1}}]\n"
          "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n"));
  const ModelFootprint f = FootprintOf(in.model);
  EXPECT_NEAR(f.TotalParams() / 1e9, 7.61, 0.02);  // published 7.62 B (biases included)
  EXPECT_EQ(f.experts, 0);
  // K and V rows: layers x 2 x kv_heads x head_dim.
  EXPECT_DOUBLE_EQ(f.kv_elements_per_token, 28 * 2 * 4 * 128);
}

TEST(CostModel, AnalyticStepMatchesFormula) {
  PlanInput in =
      Parse(std::string(kModel) +
            "deployments:\n  - name: g\n    gpu: {memory: 1 GB, memory_bandwidth: 1 GB/s,"
            " flops: 1 GFLOP/s, bandwidth_efficiency: 0.5, mfu: 0.5,"
            " step_overhead_seconds: 0.001}\n"
            "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n");
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok()) << cost.status();
  const ModelFootprint& f = cost->footprint();
  // One decode at context 100: tp = ep = 1, T = 1 touches k = 2 experts.
  const StepShape s{.decode_sequences = 1, .decode_context = 100, .sequences = 1};
  EXPECT_DOUBLE_EQ(cost->ExpectedExpertsTouched(1), 2);
  const double weight_bytes = (f.attention_params + f.dense_mlp_params + f.shared_expert_params +
                               f.router_params + f.lm_head_params + 2 * f.expert_params) *
                              2;
  const double flops =
      2 * f.ActiveParamsPerToken() + 2 * f.lm_head_params + 100 * 2 * 4 * 2 * (32 + 8 + 32);
  const double kv = 100 * 2 * 40 * 2;  // context * layers * (kv_lora + rope) * bytes
  const double expected = std::max(weight_bytes / 0.5e9, flops / 0.5e9) + kv / 0.5e9 + 0.001;
  EXPECT_NEAR(cost->StepSeconds(s), expected, 1e-12);
  // KV pool: 0.9 GB - weights, / 160 bytes per token, / 64 per block.
  const double weights = f.TotalParams() * 2;
  EXPECT_EQ(cost->num_kv_blocks(), static_cast<int32_t>(std::floor((0.9e9 - weights) / 160 / 64)));
}

TEST(CostModel, MonotonicInEveryDimension) {
  for (const std::string gpu : {"measured: {step_seconds: 0.01, token_seconds: 0.001, "
                                "sequence_seconds: 0.001, context_token_seconds: 0.000001}\n"
                                "    scheduler: {num_kv_blocks: 100}",
                                "gpu: {memory: 80 GB, memory_bandwidth: 3 TB/s, flops: 900 TFLOP/s,"
                                " link_bandwidth: 450 GB/s}\n    layout: {tp: 2, ep: 4}"}) {
    PlanInput in = Parse(std::string(kModel) + "deployments:\n  - name: d\n    " + gpu +
                         "\nservices: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n");
    absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
    ASSERT_TRUE(cost.ok()) << cost.status();
    double last = 0;
    for (int64_t n : {1, 2, 8, 64, 256}) {
      const double t =
          cost->StepSeconds({.decode_sequences = n, .decode_context = n * 512, .sequences = n});
      EXPECT_GT(t, last) << gpu << " decode " << n;
      last = t;
    }
    last = 0;
    for (int64_t ctx : {1, 1000, 100000, 10000000}) {
      const double t =
          cost->StepSeconds({.decode_sequences = 8, .decode_context = ctx, .sequences = 8});
      EXPECT_GE(t, last) << gpu << " context " << ctx;
      last = t;
    }
    last = 0;
    for (int64_t p : {1, 16, 256, 4096}) {
      const double t = cost->StepSeconds(
          {.prefill_tokens = p, .prefill_context = p * (p + 1) / 2, .sequences = 1});
      EXPECT_GT(t, last) << gpu << " prefill " << p;
      last = t;
    }
  }
}

TEST(CostModel, MeasuredIsTheLinearFit) {
  PlanInput in = Parse(OneService(1, 8, 8));
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok());
  const StepShape s{.prefill_tokens = 100,
                    .prefill_context = 5050,
                    .decode_sequences = 3,
                    .decode_context = 300,
                    .sequences = 4};
  EXPECT_NEAR(cost->StepSeconds(s), 0.010 + 103 * 0.0001 + 4 * 0.001 + 5350 * 1e-6, 1e-12);
  EXPECT_EQ(cost->num_kv_blocks(), 256);
}

TEST(CostModel, MeasuredBatchTableInterpolates) {
  PlanInput in = Parse(std::string(kModel) + R"(
deployments:
  - name: m
    measured: {token_seconds: 0.001, context_token_seconds: 0.000001,
               batch_seconds: [[1, 0.01], [4, 0.02], [8, 0.04]]}
    scheduler: {num_kv_blocks: 64}
services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]
)");
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok()) << cost.status();
  auto decode = [&](int64_t n) {
    return cost->StepSeconds({.decode_sequences = n, .decode_context = n, .sequences = n});
  };
  EXPECT_NEAR(decode(1), 0.01 + 1e-6, 1e-12);
  EXPECT_NEAR(decode(2), 0.01 + 0.01 / 3 + 2e-6, 1e-12);
  EXPECT_NEAR(decode(4), 0.02 + 4e-6, 1e-12);
  EXPECT_NEAR(decode(6), 0.03 + 6e-6, 1e-12);
  EXPECT_NEAR(decode(16), 0.08 + 16e-6, 1e-12);  // along the last segment
  // A 100-token prefill item: base(1) + 99 more tokens + 5050 pairs.
  EXPECT_NEAR(cost->StepSeconds({.prefill_tokens = 100, .prefill_context = 5050, .sequences = 1}),
              0.01 + 99 * 0.001 + 5050e-6, 1e-12);
}

TEST(CostModel, WeightsThatDoNotFitAreResourceExhausted) {
  PlanInput in = Parse(std::string(kModel) +
                       "deployments: [{name: g, gpu: {memory: 100 KB, memory_bandwidth: 1 TB/s,"
                       " flops: 1 TFLOP/s}}]\n"
                       "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n");
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  EXPECT_EQ(cost.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(Simulator, NoArrivalsNothingHappens) {
  const SimResult r = SimulateOne(Parse(OneService(0, 64, 16)));
  EXPECT_EQ(r.total.arrived, 0);
  EXPECT_EQ(r.steps, 0);
  EXPECT_EQ(r.output_tokens_per_s, 0);
  EXPECT_EQ(r.kv_blocks_peak, 0);
  EXPECT_EQ(r.rejected_fraction, 0);
}

TEST(Simulator, UnderloadedTtftIsOnePrefillStep) {
  // 0.02 req/s of 64-token prompts: requests almost never overlap.
  const PlanInput in = Parse(OneService(0.02, 64, 16));
  const SimResult r = SimulateOne(in);
  ASSERT_GT(r.total.completed, 3);
  EXPECT_EQ(r.total.rejected + r.total.unfinished, 0);
  const double prefill = 0.010 + 64 * 0.0001 + 0.001 + (64 * 65 / 2) * 1e-6;
  EXPECT_NEAR(r.total.ttft.p50, prefill, 1e-9);
  // Decode step i (0-based) attends 64 + i + 1 tokens.
  EXPECT_NEAR(r.total.tpot.p50, 0.010 + 0.0001 + 0.001 + (64 + 8) * 1e-6, 1e-5);
  EXPECT_NEAR(r.output_tokens_per_s, 0.02 * 16, 0.02 * 16 * 0.5);  // Poisson noise
}

TEST(Simulator, OverloadQueuesAndRejects) {
  // Capacity: a decode step of 32 sequences takes ~0.01 + 32 * 0.0011 s ~ 45 ms, i.e. ~700
  // tokens/s; 64 output tokens per request => ~11 req/s at most. Offer 4 and 40 req/s.
  const PlanInput in = Parse(OneService(4, 64, 64));
  const SimResult light = SimulateOne(in);
  const SimResult heavy = SimulateOne(in, 10);
  EXPECT_EQ(light.total.rejected, 0);
  EXPECT_GT(heavy.total.rejected, heavy.total.arrived / 4);
  EXPECT_GT(heavy.total.queue.p50, 10 * light.total.queue.p50 + 1.0);
  EXPECT_GT(heavy.total.ttft.p90, 5 * light.total.ttft.p90);
  EXPECT_GT(heavy.busy_fraction, 0.99);
  // Saturated: throughput stops growing with the offered load.
  EXPECT_LT(heavy.requests_per_s, 0.5 * heavy.offered_requests_per_s);
  EXPECT_GT(heavy.kv_peak_fraction, light.kv_peak_fraction);
}

TEST(Simulator, EmergencyBeatsBatchUnderLoad) {
  const std::string yaml = std::string(kModel) + kMeasured + R"(
services:
  - {name: dispatch, rate: 0.5, max_priority: emergency, priority_mix: {emergency: 1},
     prompt_tokens: 64, output_tokens: 32}
  - {name: analytics, rate: 12, max_priority: batch, priority_mix: {batch: 1},
     prompt_tokens: {uniform: [32, 128]}, output_tokens: {uniform: [32, 96]}}
)";
  const SimResult r = SimulateOne(Parse(yaml));
  const ClassResult& em = r.classes[PriorityIndex(Priority::kEmergency)];
  const ClassResult& batch = r.classes[PriorityIndex(Priority::kBatch)];
  ASSERT_GT(em.completed, 20);
  ASSERT_GT(batch.completed, 100);
  EXPECT_LT(em.ttft.p99, batch.ttft.p99);
  EXPECT_LT(em.ttft.p99, 0.5);
  EXPECT_GT(batch.ttft.p99, 1.0);  // the batch class is queueing
}

TEST(Simulator, TenantCapsThePriorityClass) {
  // A service capped at batch asking for interactive is counted (and scheduled) as batch.
  const std::string yaml = std::string(kModel) + kMeasured + R"(
services:
  - {name: a, rate: 1, max_priority: batch, priority_mix: {interactive: 1},
     prompt_tokens: 16, output_tokens: 4}
)";
  const SimResult r = SimulateOne(Parse(yaml));
  EXPECT_EQ(r.classes[PriorityIndex(Priority::kInteractive)].arrived, 0);
  EXPECT_GT(r.classes[PriorityIndex(Priority::kBatch)].completed, 0);
}

TEST(Simulator, DeterministicForASeed) {
  const PlanInput in = Parse(OneService(5, 64, 32));
  const SimResult a = SimulateOne(in), b = SimulateOne(in);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.total.ttft.p99, b.total.ttft.p99);
}

TEST(Simulator, SharedPrefixHitsTheCache) {
  const std::string yaml = std::string(kModel) + kMeasured + R"(
services:
  - {name: a, rate: 1, prompt_tokens: 256, output_tokens: 4, shared_prefix_tokens: 192}
)";
  const SimResult r = SimulateOne(Parse(yaml));
  // 3 full blocks of 64 are shared: after the first request every one hits them.
  EXPECT_GT(r.prefix_hit_tokens, 192 * (r.total.completed - 2));
}

TEST(Simulator, SystemPromptSharedAcrossCountiesOnlyWhenAllowed) {
  // Two counties of one entry, one system prompt; the server keeps prefixes per tenant unless
  // share_prefix_across_tenants is set.
  auto hits = [](bool share) {
    const std::string yaml = std::string(kModel) + kMeasured + R"(
services:
  - {name: c, count: 2, rate: 0.5, prompt_tokens: 256, output_tokens: 4, shared_prefix_tokens: 192}
)";
    PlanInput in = Parse(yaml);
    in.deployments[0].limits.share_prefix_across_tenants = share;
    return SimulateOne(in).prefix_hit_tokens;
  };
  const int64_t private_hits = hits(false), shared_hits = hits(true);
  EXPECT_GT(private_hits, 0);
  EXPECT_GT(shared_hits, private_hits);
}

TEST(Sizing, SmallestReplicaCountMeetsAndOneFewerMisses) {
  const std::string yaml = OneService(30, 64, 64) + R"(
targets:
  interactive: {ttft_p99_seconds: 0.5, tpot_p99_seconds: 0.05}
)";
  const PlanInput in = Parse(yaml);
  absl::StatusOr<CostModel> cost = CostModel::Create(in.model, in.precision, in.deployments[0]);
  ASSERT_TRUE(cost.ok());
  absl::StatusOr<SizingResult> s = SizeReplicas(in, in.deployments[0], *cost);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->met);
  ASSERT_GT(s->replicas, 1);
  EXPECT_TRUE(s->checks.at(s->replicas).met);
  EXPECT_FALSE(s->checks.at(s->replicas - 1).met);
  // Independently: one fewer replica misses, the answer meets.
  const Deployment& d = in.deployments[0];
  auto sim = [&](int32_t n) { return *Simulate(in, d, *cost, {.rate_scale = 1.0 / n}); };
  EXPECT_TRUE(CheckTargets(in.targets, sim(s->replicas)).met);
  EXPECT_FALSE(CheckTargets(in.targets, sim(s->replicas - 1)).met);
  EXPECT_EQ(s->gpus, s->replicas);

  absl::StatusOr<CapacityResult> c = MaxSustainableScale(in, d, *cost);
  ASSERT_TRUE(c.ok());
  // Consistent with the replica count: 1/replicas fits, 1/(replicas - 1) does not.
  EXPECT_GE(c->max_scale * 1.03, 1.0 / s->replicas);
  EXPECT_LT(c->max_scale, 1.0 / (s->replicas - 1));
}

TEST(Sizing, NodesForLayouts) {
  EXPECT_EQ(NodesFor({.tp = 8, .ep = 8, .gpus_per_node = 8}, 3), 3);
  EXPECT_EQ(NodesFor({.tp = 8, .ep = 16, .gpus_per_node = 8}, 3), 6);
  EXPECT_EQ(NodesFor({.tp = 2, .ep = 2, .gpus_per_node = 8}, 5), 2);
}

TEST(PlanInput, LengthDistributions) {
  const std::string yaml = std::string(kModel) + kMeasured + R"(
services:
  - name: svc
    count: 3
    rate: 1
    prompt_tokens: {lognormal: {mean: 1000, p90: 2000}, max: 100000}
    output_tokens: {uniform: [10, 20]}
)";
  const PlanInput in = Parse(yaml);
  ASSERT_EQ(in.services.size(), 3u);
  EXPECT_EQ(in.services[0].name, "svc-01");
  EXPECT_EQ(in.services[2].policy.id, "svc-03");
  const LengthDist& p = in.services[0].prompt_tokens;
  EXPECT_NEAR(p.Mean(), 1000, 1e-6);
  EXPECT_NEAR(std::exp(p.mu + 1.2815515655446004 * p.sigma), 2000, 1e-6);
  std::mt19937_64 rng(1);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) sum += static_cast<double>(p.Sample(rng));
  EXPECT_NEAR(sum / 20000, 1000, 30);
  for (int i = 0; i < 100; ++i) {
    const int64_t v = in.services[0].output_tokens.Sample(rng);
    EXPECT_GE(v, 10);
    EXPECT_LE(v, 20);
  }
}

// Each bad input must fail with a message naming the field.
TEST(PlanInput, ErrorsNameTheField) {
  const std::string base = std::string(kModel) + kMeasured;
  const std::string ok_service =
      "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8}]\n";
  struct Case {
    std::string yaml, field;
  };
  const Case cases[] = {
      {base + "services: [{name: a, rate: -1, prompt_tokens: 8, output_tokens: 8}]\n",
       "services[0].rate"},
      {base + "services: [{name: a, prompt_tokens: 8, output_tokens: 8}]\n", "services[0].rate"},
      {base + "services: [{name: a, rate: 1, prompt_tokens: 8}]\n", "services[0].output_tokens"},
      {base + "services: [{name: a, rate: 1, prompt_tokens: {lognormal: {mean: 100, p90: 900}},"
              " output_tokens: 8}]\n",
       "services[0].prompt_tokens.lognormal.p90"},
      {base +
           "services: [{name: a, rate: 1, prompt_tokens: {uniform: [9, 3]}, output_tokens: 8}]\n",
       "services[0].prompt_tokens.uniform"},
      {base + "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8,"
              " priority_mix: {urgent: 1}}]\n",
       "services[0].priority_mix"},
      {base + "services: [{name: 'a b', rate: 1, prompt_tokens: 8, output_tokens: 8}]\n",
       "services[0].name"},
      {base + "services: [{name: a, rate: 1, prompt_tokens: 8, output_tokens: 8, colour: red}]\n",
       "services[0].colour"},
      {std::string(kModel) +
           std::regex_replace(kMeasured, std::regex("duration_seconds"), "durration_seconds") +
           ok_service,
       "simulation.durration_seconds"},
      {base + ok_service + "targets: {interactive: {ttft_p99_seconds: fast}}\n",
       "targets.interactive.ttft_p99_seconds"},
      {std::string(kModel) +
           "deployments: [{name: g, gpu: {memory_bandwidth: 1 TB/s, flops: 1}}]\n" + ok_service,
       "deployments[0].gpu.memory"},
      {std::string(kModel) +
           "deployments: [{name: g, gpu: {memory: 80 GB, memory_bandwidth: "
           "fast, flops: 1}}]\n" +
           ok_service,
       "deployments[0].gpu.memory_bandwidth"},
      {std::string(kModel) +
           "deployments: [{name: g, gpu: {memory: 80 GB, memory_bandwidth: 1, "
           "flops: 1}, layout: {tp: 16, ep: 16}}]\n" +
           ok_service,
       "deployments[0].layout.tp"},
      {std::string(kModel) + "deployments: [{name: m, measured: {step_seconds: 0.01}}]\n" +
           ok_service,
       "deployments[0].scheduler.num_kv_blocks"},
      {std::string(kModel) +
           "deployments: [{name: m, measured: {step_seconds: 0.01}, "
           "scheduler: {num_kv_blocks: 10, max_running: 0}}]\n" +
           ok_service,
       "deployments[0].scheduler.max_running"},
      {"model: {config: /nonexistent/config.json}\n" + std::string(kMeasured) + ok_service,
       "model.config"},
      {"model:\n  config_json: {model_type: mistral}\n" + std::string(kMeasured) + ok_service,
       "model.config_json"},
      {std::string(kMeasured) + ok_service, "model"},
      {std::string(kModel) +
           "deployments: [{name: m, scheduler: {num_kv_blocks: 8}, measured: "
           "{step_seconds: 0.01, batch_seconds: [[1, 0.01]]}}]\n" +
           ok_service,
       "deployments[0].measured.step_seconds"},
      {std::string(kModel) +
           "deployments: [{name: m, scheduler: {num_kv_blocks: 8}, measured: "
           "{batch_seconds: [[2, 0.01], [1, 0.02]]}}]\n" +
           ok_service,
       "deployments[0].measured.batch_seconds[1]"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<PlanInput> in = ParsePlanInput(c.yaml, ".");
    ASSERT_FALSE(in.ok()) << c.field;
    EXPECT_EQ(in.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(in.status().message().find(c.field + ":"), std::string::npos)
        << "want " << c.field << " in: " << in.status().message();
  }
}

TEST(PlanInput, ShippedExamplesParse) {
  for (const char* name : {"province-v3.yaml", "cpu-tiny.yaml"}) {
    absl::StatusOr<PlanInput> in =
        LoadPlanInput(std::string(DSINFER_SOURCE_DIR) + "/configs/plan/" + name);
    ASSERT_TRUE(in.ok()) << in.status();
    EXPECT_FALSE(in->deployments.empty()) << name;
  }
  absl::StatusOr<PlanInput> in =
      LoadPlanInput(std::string(DSINFER_SOURCE_DIR) + "/configs/plan/province-v3.yaml");
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->services.size(), 72u);
  // A single H100 node cannot hold DeepSeek-V3 in FP8; two H100 nodes and one H200 node can.
  for (const Deployment& d : in->deployments) {
    absl::StatusOr<CostModel> cost = CostModel::Create(in->model, in->precision, d);
    if (d.name == "h100-tp8-ep8") {
      EXPECT_EQ(cost.status().code(), absl::StatusCode::kResourceExhausted);
    } else {
      EXPECT_TRUE(cost.ok()) << d.name << ": " << cost.status();
    }
  }
}

}  // namespace
}  // namespace dsinfer::capacity
