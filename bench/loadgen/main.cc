// dsinfer-loadgen: drives `dsinfer serve` with simulated county services and reports
// throughput, latency percentiles, rejections and stream accounting. JSON on stdout, a table on
// stderr. Flags: bench/loadgen/workload.h. Exit code 0, or 2 when a stream check failed, 1 on a
// bad workload.
#include <cstdio>
#include <cstdlib>

#include "bench/loadgen/load_driver.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/workload.h"

int main(int argc, char** argv) {
  using namespace dsinfer::loadgen;
  auto spec = ParseWorkload(argc, argv);
  if (!spec.ok()) {
    std::fprintf(stderr, "dsinfer-loadgen: %s\n", std::string(spec.status().message()).c_str());
    return 1;
  }
  auto transport = MakeTransport(*spec);
  if (!transport.ok()) {
    std::fprintf(stderr, "dsinfer-loadgen: %s\n",
                 std::string(transport.status().message()).c_str());
    return 1;
  }
  RunResult run = LoadDriver(*spec, **transport).Run();
  // Streams that never ended still reference the transport: keep it for the process.
  if (run.lost > 0) transport->release();
  const nlohmann::json report = BuildReport(*spec, run);
  std::fputs(FormatTable(report).c_str(), stderr);
  std::printf("%s\n", report.dump(2).c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  const int code = report["checks"]["passed"].get<bool>() ? 0 : 2;
  // Streams that never ended still reference the driver's state: leave without destructors.
  if (run.lost > 0) std::_Exit(code);
  transport->reset();  // joins the transport's threads once every stream has ended
  return code;
}
