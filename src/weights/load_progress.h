// A ProgressFn that draws "label: 42% (1.2 / 2.9 GB)" on stderr while weights load.
#pragma once

#include <string>

#include "src/weights/weight_store.h"

namespace dsinfer {

// Redraws the line in place when the whole percentage changes; ends it with a newline at 100%.
ProgressFn StderrProgress(std::string label);

}  // namespace dsinfer
