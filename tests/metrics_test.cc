// Metrics: exposition text, escaping, name rules, histogram math, concurrency, HTTP endpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "src/metrics/http_server.h"
#include "src/metrics/registry.h"
#include "src/metrics/server_metrics.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsFormat, Values) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(1), "1");
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(-2.25), "-2.25");
  EXPECT_EQ(FormatMetricValue(1e20), "1e+20");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");  // shortest round trip, not 0.1000000000000000055
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(MetricsFormat, Escaping) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");  // quotes stay in HELP

  MetricRegistry r;
  auto* g = *r.AddGauge("dsinfer_test_info", "Line one\nline \\two", {"name"});
  g->WithLabels({"quote\" back\\slash\nnewline"}).Set(1);
  g->WithLabels({std::string("bad\xff utf8")}).Set(2);
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# HELP dsinfer_test_info Line one\\nline \\\\two\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_test_info{name=\"quote\\\" back\\\\slash\\nnewline\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_test_info{name=\"bad\xEF\xBF\xBD utf8\"} 2\n"));
}

TEST(MetricsRender, ExactText) {
  MetricRegistry r;
  auto* c = *r.AddCounter("dsinfer_things_total", "Things.", {"kind", "tenant"});
  c->WithLabels({"b", "t1"}).Inc(2);
  c->WithLabels({"a", "t1"}).Inc();
  c->WithLabels({"a", "t1"}).Inc(-5);  // ignored: counters only go up
  (*r.AddGauge("dsinfer_level", "A level."))->Get().Set(0.25);
  auto& h = (*r.AddHistogram("dsinfer_wait_seconds", "Waits.", {}, {0.1, 1}))->Get();
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.5);
  h.Observe(3);
  EXPECT_EQ(r.Render(),
            "# HELP dsinfer_things_total Things.\n"
            "# TYPE dsinfer_things_total counter\n"
            "dsinfer_things_total{kind=\"a\",tenant=\"t1\"} 1\n"
            "dsinfer_things_total{kind=\"b\",tenant=\"t1\"} 2\n"
            "# HELP dsinfer_level A level.\n"
            "# TYPE dsinfer_level gauge\n"
            "dsinfer_level 0.25\n"
            "# HELP dsinfer_wait_seconds Waits.\n"
            "# TYPE dsinfer_wait_seconds histogram\n"
            "dsinfer_wait_seconds_bucket{le=\"0.1\"} 1\n"
            "dsinfer_wait_seconds_bucket{le=\"1\"} 2\n"
            "dsinfer_wait_seconds_bucket{le=\"+Inf\"} 3\n"
            "dsinfer_wait_seconds_sum 3.6\n"
            "dsinfer_wait_seconds_count 3\n");
}

TEST(MetricsRender, HistogramWithLabels) {
  MetricRegistry r;
  auto* f = *r.AddHistogram("dsinfer_x_seconds", "X.", {"tenant"}, {1, 2});
  f->WithLabels({"a"}).Observe(1.5);
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("dsinfer_x_seconds_bucket{tenant=\"a\",le=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_x_seconds_bucket{tenant=\"a\",le=\"2\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_x_seconds_bucket{tenant=\"a\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_x_seconds_sum{tenant=\"a\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_x_seconds_count{tenant=\"a\"} 1\n"));
}

TEST(Histogram, BucketMath) {
  Histogram h({0.5, 1, 2.5});
  for (double v : {0.0, 0.5, 0.5000001, 1.0, 2.0, 2.5, 2.6, 100.0, -1.0}) h.Observe(v);
  h.Observe(std::numeric_limits<double>::quiet_NaN());  // dropped
  h.Observe(std::numeric_limits<double>::infinity());
  Histogram::Snapshot s = h.Read();
  // <=0.5: 0, 0.5, -1 | <=1: +0.5000001, 1 | <=2.5: +2, 2.5 | +Inf: +2.6, 100, inf
  EXPECT_THAT(s.cumulative, ::testing::ElementsAre(3, 5, 7, 10));
  EXPECT_EQ(s.count, 10u);
  EXPECT_TRUE(std::isinf(s.sum));

  Histogram finite({1});
  finite.Observe(0.25);
  finite.Observe(0.5);
  EXPECT_DOUBLE_EQ(finite.Read().sum, 0.75);
}

TEST(MetricNames, Rules) {
  EXPECT_TRUE(ValidateMetricName("dsinfer_requests_total", MetricType::kCounter).ok());
  EXPECT_TRUE(ValidateMetricName("dsinfer_queue_length", MetricType::kGauge).ok());
  EXPECT_TRUE(ValidateMetricName("dsinfer_step_duration_seconds", MetricType::kHistogram).ok());
  EXPECT_TRUE(ValidateMetricName("dsinfer_kv_cache_usage_ratio", MetricType::kGauge).ok());
  struct Bad {
    const char* name;
    MetricType type;
    const char* why;
  };
  for (const Bad& b : std::vector<Bad>{
           {"requests_total", MetricType::kCounter, "must start with dsinfer_"},
           {"dsinfer_", MetricType::kGauge, "must start with dsinfer_"},
           {"dsinfer_queueLength", MetricType::kGauge, "snake_case"},
           {"dsinfer_queue:length", MetricType::kGauge, "snake_case"},
           {"dsinfer_requests", MetricType::kCounter, "ends in _total"},
           {"dsinfer_running_total", MetricType::kGauge, "only counters end in _total"},
           {"dsinfer_latency_milliseconds", MetricType::kHistogram, "\"milliseconds\""},
           {"dsinfer_latency_ms", MetricType::kHistogram, "\"ms\""},
           {"dsinfer_kv_usage_perc", MetricType::kGauge, "\"perc\""},
           {"dsinfer_kv_usage_percent", MetricType::kGauge, "\"percent\""},
           {"dsinfer_memory_mb", MetricType::kGauge, "\"mb\""},
           {"dsinfer_requests_counter_total", MetricType::kCounter, "\"counter\""},
           {"dsinfer_tokens_count", MetricType::kGauge, "reserves"},
           {"dsinfer_x_bucket", MetricType::kHistogram, "reserves"},
           {"dsinfer__x", MetricType::kGauge, "empty words"},
       }) {
    absl::Status s = ValidateMetricName(b.name, b.type);
    EXPECT_FALSE(s.ok()) << b.name;
    EXPECT_THAT(s.message(), HasSubstr(b.why)) << b.name;
  }
  EXPECT_TRUE(ValidateLabelName("tenant").ok());
  EXPECT_TRUE(ValidateLabelName("_x1").ok());
  for (const char* bad : {"", "le", "quantile", "__name__", "1x", "a-b"}) {
    EXPECT_FALSE(ValidateLabelName(bad).ok()) << bad;
  }
}

TEST(MetricRegistry, RefusesBadFamilies) {
  MetricRegistry r;
  ASSERT_TRUE(r.AddCounter("dsinfer_a_total", "A.").ok());
  EXPECT_EQ(r.AddCounter("dsinfer_a_total", "Again.").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(r.AddGauge("dsinfer_b", "").ok());  // no HELP
  EXPECT_FALSE(r.AddGauge("dsinfer_b", "B.", {"x", "x"}).ok());
  EXPECT_FALSE(r.AddGauge("dsinfer_b", "B.", {"le"}).ok());
  EXPECT_FALSE(r.AddHistogram("dsinfer_h_seconds", "H.", {}, {}).ok());
  EXPECT_FALSE(r.AddHistogram("dsinfer_h_seconds", "H.", {}, {1, 1}).ok());
  EXPECT_FALSE(r.AddHistogram("dsinfer_h_seconds", "H.", {}, {2, 1}).ok());
  EXPECT_FALSE(
      r.AddHistogram("dsinfer_h_seconds", "H.", {}, {1, std::numeric_limits<double>::infinity()})
          .ok());
  EXPECT_TRUE(r.AddHistogram("dsinfer_h_seconds", "H.", {}, {1, 2}).ok());
}

TEST(MetricRegistry, ConcurrentUpdatesAndScrapes) {
  MetricRegistry r;
  auto* c = *r.AddCounter("dsinfer_events_total", "Events.", {"tenant"});
  auto* h = *r.AddHistogram("dsinfer_event_seconds", "Event times.", {"tenant"}, {0.5, 1});
  auto* g = (*r.AddGauge("dsinfer_level", "Level."));
  constexpr int kThreads = 4, kPerThread = 50000;
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  // A scraper checks every snapshot is self-consistent: count == +Inf bucket.
  std::thread scraper([&] {
    while (!done.load()) {
      const std::string text = r.Render();
      std::istringstream in(text);
      std::string line, inf, count;
      while (std::getline(in, line)) {
        if (line.rfind("dsinfer_event_seconds_bucket{tenant=\"t0\",le=\"+Inf\"}", 0) == 0) {
          inf = line.substr(line.rfind(' ') + 1);
        }
        if (line.rfind("dsinfer_event_seconds_count{tenant=\"t0\"}", 0) == 0) {
          count = line.substr(line.rfind(' ') + 1);
        }
      }
      EXPECT_EQ(inf, count);
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      // Half the threads look the child up each time (the slow path), half cache it.
      Counter& cached = c->WithLabels({"t0"});
      Histogram& hist = h->WithLabels({"t0"});
      for (int i = 0; i < kPerThread; ++i) {
        if (t % 2 == 0) {
          cached.Inc();
        } else {
          c->WithLabels({"t0"}).Inc();
        }
        hist.Observe((i % 4) * 0.4);  // 0, 0.4, 0.8, 1.2
        g->Get().Add(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_EQ(c->WithLabels({"t0"}).Value(), kThreads * kPerThread);
  EXPECT_EQ(g->Get().Value(), kThreads * kPerThread);
  Histogram::Snapshot s = h->WithLabels({"t0"}).Read();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));  // 0, 0.4
  EXPECT_EQ(s.cumulative[1], static_cast<uint64_t>(kThreads * kPerThread * 3 / 4));
  EXPECT_NEAR(s.sum, kThreads * kPerThread / 4 * (0.4 + 0.8 + 1.2), 1e-6);
}

ServerMetricsOptions SampleOptions() {
  ServerMetricsOptions o;
  o.tenants = {"county-b", "county-a", "emergency-dispatch"};
  o.model_name = "DeepSeek-V3";
  o.dtype = "bf16";
  o.backend = "cuda";
  o.moe_layers = {3, 4, 5};
  o.num_experts = 4;
  return o;
}

TEST(ServerMetrics, PrecreatesEverySeries) {
  ServerMetrics m(SampleOptions());
  const std::string text = m.Render();
  for (const char* name : {"dsinfer_requests_total",
                           "dsinfer_queue_length",
                           "dsinfer_sequences_running",
                           "dsinfer_sequences_waiting",
                           "dsinfer_kv_cache_blocks",
                           "dsinfer_kv_cache_usage_ratio",
                           "dsinfer_prefix_cache_queried_tokens_total",
                           "dsinfer_prefix_cache_hit_tokens_total",
                           "dsinfer_prompt_tokens_total",
                           "dsinfer_generation_tokens_total",
                           "dsinfer_time_to_first_token_seconds",
                           "dsinfer_time_per_output_token_seconds",
                           "dsinfer_e2e_request_latency_seconds",
                           "dsinfer_request_queue_time_seconds",
                           "dsinfer_batch_tokens",
                           "dsinfer_batch_sequences",
                           "dsinfer_step_duration_seconds",
                           "dsinfer_preemptions_total",
                           "dsinfer_rejections_total",
                           "dsinfer_api_calls_total",
                           "dsinfer_moe_expert_tokens_total",
                           "dsinfer_moe_expert_load_imbalance_ratio",
                           "dsinfer_model_info"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " ")) << name;
  }
  EXPECT_THAT(text, HasSubstr("dsinfer_requests_total{tenant=\"county-a\",priority=\"emergency\","
                              "outcome=\"completed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_queue_length{priority=\"batch\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_rejections_total{reason=\"rate_limited\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_api_calls_total{protocol=\"openai\","
                              "code=\"RESOURCE_EXHAUSTED\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_kv_cache_blocks{state=\"cached\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_moe_expert_tokens_total{layer=\"5\",expert=\"3\"} 0\n"));
  EXPECT_THAT(
      text,
      HasSubstr("dsinfer_model_info{model=\"DeepSeek-V3\",dtype=\"bf16\",backend=\"cuda\"} 1\n"));
}

TEST(ServerMetrics, Updates) {
  ServerMetrics m(SampleOptions());
  EXPECT_EQ(m.Tenant("nobody"), nullptr);
  const TenantMetrics* t = m.Tenant("county-a");
  ASSERT_NE(t, nullptr);
  t->Requests(Priority::kInteractive, RequestOutcome::kCancelled).Inc();
  t->prompt_tokens->Inc(120);
  t->time_to_first_token[static_cast<int>(Priority::kInteractive)]->Observe(0.3);
  m.QueueLength(Priority::kEmergency).Set(2);
  m.Preemptions(Priority::kBatch).Inc();
  m.Rejections(RejectionReason::kQueueFull).Inc();
  m.SetKvCacheBlocks(30, 60, 10);
  m.ObserveStep(300, 12, 0.04);
  m.sequences_running->Set(12);
  m.prefix_cache_hit_tokens->Inc(64);
  const int64_t load[] = {6, 2, 0, 0};  // mean 2, max 6
  m.RecordMoeLoad(4, load);
  m.RecordMoeLoad(4, load);
  m.RecordMoeLoad(0, load);  // dense layer: ignored
  const int64_t wrong[] = {1, 2};
  m.RecordMoeLoad(3, wrong);  // wrong expert count: ignored

  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("dsinfer_requests_total{tenant=\"county-a\",priority=\"interactive\","
                              "outcome=\"cancelled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_prompt_tokens_total{tenant=\"county-a\"} 120\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_time_to_first_token_seconds_bucket{tenant=\"county-a\","
                              "priority=\"interactive\",le=\"0.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_queue_length{priority=\"emergency\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_preemptions_total{priority=\"batch\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_rejections_total{reason=\"queue_full\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_kv_cache_blocks{state=\"used\"} 30\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_kv_cache_usage_ratio 0.3\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_batch_tokens_bucket{le=\"512\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_batch_tokens_bucket{le=\"256\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_step_duration_seconds_sum 0.04\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_moe_expert_tokens_total{layer=\"4\",expert=\"0\"} 12\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_moe_expert_load_imbalance_ratio{layer=\"4\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("dsinfer_moe_expert_load_imbalance_ratio{layer=\"3\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("layer=\"0\"")));
}

// ---- HTTP ----

struct HttpFixture : ::testing::Test {
  MetricRegistry registry;
  std::atomic<int> state{0};  // 0 loading, 1 ready, 2 draining
  MetricsHttpServer server{&registry, [this] {
                             switch (state.load()) {
                               case 1:
                                 return Readiness{true, ""};
                               case 2:
                                 return Readiness{false, "draining"};
                               default:
                                 return Readiness{false, "loading"};
                             }
                           }};
  void SetUp() override {
    (*registry.AddCounter("dsinfer_scrape_test_total", "Test."))->Get().Inc(7);
    ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
    ASSERT_GT(server.port(), 0);
  }
  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server.port());
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(5, 0);
    return client.Get(path.c_str());
  }
};

TEST_F(HttpFixture, Metrics) {
  httplib::Result r = Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(r->body, HasSubstr("dsinfer_scrape_test_total 7\n"));
}

TEST_F(HttpFixture, HealthAndReadiness) {
  httplib::Result h = Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);  // live while loading

  httplib::Result r = Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "not ready: loading\n");
  state = 1;
  r = Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  state = 2;
  r = Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "not ready: draining\n");

  httplib::Result missing = Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpFixture, StopClosesTheListener) {
  EXPECT_EQ(server.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
  server.Stop();
  server.Stop();  // idempotent
  httplib::Result r = Get("/healthz");
  EXPECT_FALSE(r);
}

TEST_F(HttpFixture, PortInUse) {
  MetricsHttpServer other(&registry, nullptr);
  absl::Status s = other.Start("127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

TEST(MetricsHttpServer, NullReadinessIsReadyAndBadAddressFails) {
  MetricRegistry registry;
  MetricsHttpServer server(&registry, nullptr);
  EXPECT_EQ(server.Start("no-port").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  httplib::Result r = client.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Destructor stops the server.
}

TEST(MetricsHttpServer, StartStopRepeatedly) {
  MetricRegistry registry;
  for (int i = 0; i < 20; ++i) {
    MetricsHttpServer server(&registry, nullptr);
    ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
    server.Stop();
  }
}

}  // namespace
}  // namespace dsinfer
