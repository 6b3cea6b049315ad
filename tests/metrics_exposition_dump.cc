// Fills a ServerMetrics with sample traffic, serves it on a loopback ephemeral port, scrapes
// /metrics over HTTP like Prometheus would, and writes the body to argv[1] for the validators
// (promtool, prometheus_client) run by check_metrics_exposition.sh.
#include <httplib.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "src/metrics/http_server.h"
#include "src/metrics/server_metrics.h"

int main(int argc, char** argv) {
  using namespace dsinfer;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_FILE\n", argv[0]);
    return 2;
  }
  ServerMetricsOptions o;
  o.tenants = {"anning-civil-affairs", "emergency-dispatch", "hotline-12345",
               "provincial-analytics"};
  o.model_name = "DeepSeek \"V3\" \\ test\nmodel";  // exercises label escaping end to end
  o.dtype = "bf16";
  o.backend = "cpu";
  for (int l = 3; l < 8; ++l) o.moe_layers.push_back(l);
  o.num_experts = 16;
  ServerMetrics m(o);

  for (int i = 0; i < 100; ++i) {
    const TenantMetrics* t = m.Tenant(o.tenants[i % o.tenants.size()]);
    const Priority p = static_cast<Priority>(i % kNumPriorities);
    t->Requests(p, static_cast<RequestOutcome>(i % kNumRequestOutcomes)).Inc();
    t->prompt_tokens->Inc(100 + i);
    t->generation_tokens->Inc(20);
    t->time_to_first_token[static_cast<int>(p)]->Observe(0.01 * i);
    t->time_per_output_token[static_cast<int>(p)]->Observe(0.002 * i);
    t->e2e_latency[static_cast<int>(p)]->Observe(0.1 * i);
    t->queue_time[static_cast<int>(p)]->Observe(0.001 * i);
    m.ObserveStep(64 * (i % 8 + 1), i % 32 + 1, 0.001 * (i % 50));
    int64_t load[16] = {};
    for (int e = 0; e < 16; ++e) load[e] = (e * 7 + i) % 11;
    m.RecordMoeLoad(3 + i % 5, load);
  }
  m.QueueLength(Priority::kInteractive).Set(5);
  m.Preemptions(Priority::kBatch).Inc(3);
  m.Rejections(RejectionReason::kRateLimited).Inc(2);
  m.SetKvCacheBlocks(700, 200, 100);
  m.sequences_running->Set(32);
  m.sequences_waiting->Set(5);
  m.prefix_cache_queried_tokens->Inc(10000);
  m.prefix_cache_hit_tokens->Inc(4096);
  m.spec_decode_draft_tokens->Inc(30);
  m.spec_decode_accepted_tokens->Inc(21);
  for (int j = 0; j < 3; ++j) {
    m.SpecDecodeDraftsAt(j).Inc(10);
    m.SpecDecodeAcceptedAt(j).Inc(9 - 2 * j);
  }

  MetricsHttpServer server(&m.registry(), nullptr);
  if (absl::Status s = server.Start("127.0.0.1:0"); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(10, 0);
  httplib::Result r = client.Get("/metrics");
  if (!r || r->status != 200) {
    std::fprintf(stderr, "scrape failed: %s\n",
                 r ? std::to_string(r->status).c_str() : httplib::to_string(r.error()).c_str());
    return 1;
  }
  if (r->get_header_value("Content-Type") != "text/plain; version=0.0.4; charset=utf-8") {
    std::fprintf(stderr, "unexpected Content-Type %s\n",
                 r->get_header_value("Content-Type").c_str());
    return 1;
  }
  std::ofstream(argv[1], std::ios::binary) << r->body;
  std::printf("scraped %zu bytes from 127.0.0.1:%d/metrics\n", r->body.size(), server.port());
  return 0;
}
