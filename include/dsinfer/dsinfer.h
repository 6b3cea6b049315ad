// The dsinfer embedding API: load a DeepSeek-style model and generate from it in-process.
// See include/dsinfer/README.md; link with find_package(dsinfer) and dsinfer::dsinfer.
#pragma once

#include "dsinfer/model.h"
#include "dsinfer/types.h"
