// protobuf's and gRPC's own log lines (e.g. "String field ... contains invalid UTF-8", which any
// client can trigger, or "Address already in use") go through the JSON log instead of raw text
// on stderr, so stderr stays one JSON object per line. Process-wide: the most recently routed
// log receives them; a log must be unrouted before it is destroyed.
#pragma once

#include "src/server/request_log.h"

namespace dsinfer {

void RouteLibraryLogs(JsonLog* log);
// Stops routing to `log` (if it is still the target); later library lines are dropped.
void UnrouteLibraryLogs(JsonLog* log);

}  // namespace dsinfer
