// Turns a run's records into the report: throughput, TTFT / TPOT / inter-token latency
// percentiles per tenant and per priority, rejections by status code, and the stream checks
// (every started stream ended exactly once, final message and usage consistent).
#pragma once

#include "bench/loadgen/load_driver.h"
#include "bench/loadgen/workload.h"
#include "nlohmann/json.hpp"

namespace dsinfer::loadgen {

// The JSON report; "checks"."passed" is false when a stream was lost, ended twice, or ended OK
// without exactly one final message whose usage matches the tokens received.
nlohmann::json BuildReport(const WorkloadSpec& spec, const RunResult& run);

// A readable table of the report (for stderr).
std::string FormatTable(const nlohmann::json& report);

}  // namespace dsinfer::loadgen
