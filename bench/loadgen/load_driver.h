// Runs a workload against one server: Poisson arrivals and closed-loop clients per tenant, all
// from one driver thread; streams complete on the transport's threads (gRPC or HTTP) and report
// back through a queue.
// Every loop is bounded by the spec's duration, request count and drain time.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/loadgen/transport.h"
#include "bench/loadgen/workload.h"

namespace dsinfer::loadgen {

struct RunResult {
  std::vector<CallRecord> records;  // every stream that ended, in end order
  Clock::time_point t0;             // run start
  Clock::time_point t_stop;         // no request started after this (duration or count reached)
  Clock::time_point t_end;          // the last stream ended (or the drain gave up)
  int64_t started = 0;
  int64_t ended = 0;               // distinct streams that ended
  int64_t duplicate_ends = 0;      // a stream that ended twice
  int64_t unknown_ends = 0;        // an end for a stream never started
  int64_t cancelled_at_drain = 0;  // still open after drain_s; the client cancelled them
  int64_t lost = 0;                // still open after cancelling (never ended)
};

class LoadDriver {
 public:
  LoadDriver(const WorkloadSpec& spec, Transport& transport)
      : spec_(spec), transport_(transport) {}
  // Progress lines go to stderr every few seconds.
  RunResult Run();

 private:
  const WorkloadSpec& spec_;
  Transport& transport_;
};

}  // namespace dsinfer::loadgen
