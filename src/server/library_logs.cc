#include "src/server/library_logs.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <mutex>
#include <string>

namespace dsinfer {
namespace {

std::mutex g_mu;  // guards g_log: a line being written keeps the log alive
JsonLog* g_log = nullptr;

void Write(LogLevel level, const char* library, const char* file, int line, const char* message) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_log == nullptr) return;
  g_log->Write(level, library,
               {{"file", file != nullptr ? file : ""},
                {"line", line},
                {"message", message != nullptr ? message : ""}});
}

void FromProtobuf(google::protobuf::LogLevel level, const char* file, int line,
                  const std::string& message) {
  // Parse complaints about a client's bytes are already reported as request_rejected.
  Write(level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kWarning : LogLevel::kDebug,
        "protobuf", file, line, message.c_str());
}

void FromGrpc(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR  ? LogLevel::kWarning
                         : args->severity == GPR_LOG_SEVERITY_INFO ? LogLevel::kInfo
                                                                   : LogLevel::kDebug;
  Write(level, "grpc", args->file, args->line, args->message);
}

}  // namespace

void RouteLibraryLogs(JsonLog* log) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_log = log;
  }
  google::protobuf::SetLogHandler(&FromProtobuf);
  gpr_set_log_function(&FromGrpc);
}

void UnrouteLibraryLogs(JsonLog* log) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_log == log) g_log = nullptr;
}

}  // namespace dsinfer
