#include "src/weights/load_progress.h"

#include <cstdio>
#include <memory>

namespace dsinfer {

ProgressFn StderrProgress(std::string label) {
  auto last_percent = std::make_shared<int>(-1);
  return [label = std::move(label), last_percent](uint64_t done, uint64_t total) {
    int percent = total == 0 ? 100 : static_cast<int>(done * 100.0 / total);
    if (percent == *last_percent) return;
    *last_percent = percent;
    std::fprintf(stderr, "\r%s: %3d%% (%.2f / %.2f GB)%s", label.c_str(), percent, done / 1e9,
                 total / 1e9, percent >= 100 ? "\n" : "");
    std::fflush(stderr);
  };
}

}  // namespace dsinfer
