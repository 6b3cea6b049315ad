// dsinfer client --address HOST:PORT [--api-key K | env DSINFER_API_KEY]
//   [--tls | --tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]
//   (--prompt TEXT [--chat] [--system TEXT] | --ids 1,2) [--max-tokens N] [--temperature T]
//   [--top-p P] [--top-k K] [--seed S] [--stop TEXT] [--stop-ids 1,2] [--ignore-eos]
//   [--priority emergency|interactive|batch] [--client-request-id ID] [--timeout SECONDS]
// dsinfer client --address HOST:PORT --health [--service NAME]
// Streams the completion text to stdout as it arrives, then one JSON line on stderr with the
// request id, finish reason, usage and token ids. A failed call exits non-zero and prints its
// gRPC status (and retry-after-ms when the server sent one).
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "src/cli/args.h"
#include "src/cli/commands_server.h"
#include "src/config/priority.h"
#include "src/core/status_macros.h"

namespace dsinfer::cli {
namespace {

// gRPC and absl number their status codes alike; absl names them.
std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

absl::Status FromGrpc(const grpc::Status& s, const grpc::ClientContext& ctx) {
  std::string message = absl::StrCat(CodeName(s.error_code()), ": ", s.error_message());
  const auto& trailers = ctx.GetServerTrailingMetadata();
  if (auto it = trailers.find("retry-after-ms"); it != trailers.end()) {
    absl::StrAppend(&message, " (retry-after-ms ",
                    std::string(it->second.data(), it->second.size()), ")");
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), message);
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const Args& args) {
  ASSIGN_OR_RETURN(std::string address, args.Required("address"));
  grpc::ChannelArguments channel_args;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (args.Has("tls") || args.Has("tls-ca") || args.Has("tls-cert")) {
    grpc::SslCredentialsOptions ssl;
    if (auto ca = args.Get("tls-ca")) {
      ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile("tls-ca", *ca));
    }
    if (args.Has("tls-cert") != args.Has("tls-key")) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    if (auto cert = args.Get("tls-cert")) {
      ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile("tls-cert", *cert));
      ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile("tls-key", *args.Get("tls-key")));
    }
    creds = grpc::SslCredentials(ssl);
    if (auto name = args.Get("tls-server-name")) {
      channel_args.SetSslTargetNameOverride(*name);
    }
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(address, creds, channel_args);
}

void AddAuth(grpc::ClientContext* ctx, const Args& args) {
  std::string key;
  if (auto k = args.Get("api-key")) {
    key = *k;
  } else if (const char* env = std::getenv("DSINFER_API_KEY")) {
    key = env;
  }
  if (!key.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", key));
}

absl::Status SetDeadline(grpc::ClientContext* ctx, const Args& args) {
  if (!args.Has("timeout")) return absl::OkStatus();
  ASSIGN_OR_RETURN(double seconds, args.Float("timeout", 0));
  if (!(seconds > 0)) return absl::InvalidArgumentError("--timeout: must be > 0 seconds");
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::duration<double>(seconds)));
  return absl::OkStatus();
}

absl::Status Health(const Args& args) {
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, MakeChannel(args));
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  if (!args.Has("timeout")) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  RETURN_IF_ERROR(SetDeadline(&ctx, args));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(args.Get("service").value_or(""));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st, ctx);
  const std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  std::printf("%s\n", nlohmann::json({{"status", name}}).dump().c_str());
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat("health: ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GenerateRequest> BuildRequest(const Args& args) {
  v1::GenerateRequest req;
  if (args.Has("ids") == args.Has("prompt")) {
    return absl::InvalidArgumentError("exactly one of --ids or --prompt is required");
  }
  if (args.Has("ids")) {
    if (args.Has("chat") || args.Has("system")) {
      return absl::InvalidArgumentError("--chat and --system go with --prompt");
    }
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, args.Ids("ids"));
    req.mutable_token_ids()->mutable_ids()->Assign(ids.begin(), ids.end());
  } else if (args.Has("chat")) {
    v1::ChatInput* chat = req.mutable_chat();
    if (auto sys = args.Get("system")) {
      v1::ChatMessage* m = chat->add_messages();
      m->set_role("system");
      m->set_content(*sys);
    }
    v1::ChatMessage* m = chat->add_messages();
    m->set_role("user");
    m->set_content(*args.Get("prompt"));
  } else {
    if (args.Has("system")) return absl::InvalidArgumentError("--system needs --chat");
    req.set_prompt(*args.Get("prompt"));
  }
  ASSIGN_OR_RETURN(int64_t max_tokens, args.Int("max-tokens", 64));
  if (max_tokens < 1 || max_tokens > UINT32_MAX) {
    return absl::InvalidArgumentError("--max-tokens: must be >= 1");
  }
  req.set_max_tokens(static_cast<uint32_t>(max_tokens));
  v1::SamplingParams* s = req.mutable_sampling();
  if (args.Has("temperature")) {
    ASSIGN_OR_RETURN(double t, args.Float("temperature", 0));
    s->set_temperature(static_cast<float>(t));
  }
  if (args.Has("top-p")) {
    ASSIGN_OR_RETURN(double p, args.Float("top-p", 1));
    s->set_top_p(static_cast<float>(p));
  }
  if (args.Has("top-k")) {
    ASSIGN_OR_RETURN(int64_t k, args.Int("top-k", 0));
    s->set_top_k(static_cast<int32_t>(k));
  }
  if (args.Has("seed")) {
    ASSIGN_OR_RETURN(int64_t seed, args.Int("seed", 0));
    s->set_seed(static_cast<uint64_t>(seed));
  }
  if (auto stop = args.Get("stop")) req.add_stop(*stop);
  if (args.Has("stop-ids")) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, args.Ids("stop-ids"));
    req.mutable_stop_token_ids()->Assign(ids.begin(), ids.end());
  }
  req.set_ignore_eos(args.Has("ignore-eos"));
  if (auto p = args.Get("priority")) {
    std::optional<Priority> prio = ParsePriority(*p);
    if (!prio) {
      return absl::InvalidArgumentError(
          absl::StrCat("--priority: \"", *p, "\" is not emergency, interactive or batch"));
    }
    switch (*prio) {
      case Priority::kEmergency:
        req.set_priority(v1::PRIORITY_EMERGENCY);
        break;
      case Priority::kInteractive:
        req.set_priority(v1::PRIORITY_INTERACTIVE);
        break;
      case Priority::kBatch:
        req.set_priority(v1::PRIORITY_BATCH);
        break;
    }
  }
  if (auto id = args.Get("client-request-id")) req.set_client_request_id(*id);
  return req;
}

const char* FinishName(v1::FinishReason r) {
  switch (r) {
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    case v1::FINISH_REASON_TOOL_CALLS:
      return "tool_calls";
    default:
      break;
  }
  return "unspecified";
}

}  // namespace

absl::Status RunClient(int argc, char** argv) {
  ASSIGN_OR_RETURN(
      Args args,
      Args::Parse(argc, argv, 2,
                  {"address", "api-key", "tls-ca", "tls-cert",   "tls-key",     "tls-server-name",
                   "prompt",  "system",  "ids",    "max-tokens", "temperature", "top-p",
                   "top-k",   "seed",    "stop",   "stop-ids",   "priority",    "client-request-id",
                   "timeout", "service"},
                  {"chat", "health", "tls", "ignore-eos"}));
  if (args.Has("health")) return Health(args);
  ASSIGN_OR_RETURN(v1::GenerateRequest req, BuildRequest(args));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, MakeChannel(args));
  auto stub = v1::Inference::NewStub(channel);
  grpc::ClientContext ctx;
  AddAuth(&ctx, args);
  RETURN_IF_ERROR(SetDeadline(&ctx, args));

  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub->Generate(&ctx, req);
  v1::GenerateResponse msg;
  std::string request_id;
  std::vector<int32_t> ids;
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;
  std::string reasoning;  // a thinking model's thought (chat): in the summary, not on stdout
  while (reader->Read(&msg)) {
    if (!msg.request_id().empty()) request_id = msg.request_id();
    reasoning += msg.reasoning_text();
    ids.insert(ids.end(), msg.token_ids().begin(), msg.token_ids().end());
    if (!msg.text().empty()) {
      std::fwrite(msg.text().data(), 1, msg.text().size(), stdout);
      std::fflush(stdout);
    }
    if (msg.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = msg.finish_reason();
    if (msg.has_usage()) usage = msg.usage();
  }
  grpc::Status st = reader->Finish();
  if (!ids.empty()) std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!st.ok()) return FromGrpc(st, ctx);
  nlohmann::json out = {{"request_id", request_id},
                        {"finish_reason", FinishName(finish)},
                        {"usage",
                         {{"prompt_tokens", usage.prompt_tokens()},
                          {"completion_tokens", usage.completion_tokens()},
                          {"cached_tokens", usage.cached_tokens()},
                          {"queue_seconds", usage.queue_seconds()},
                          {"time_to_first_token_seconds", usage.time_to_first_token_seconds()},
                          {"total_seconds", usage.total_seconds()}}},
                        {"token_ids", ids}};
  if (!reasoning.empty()) out["reasoning_content"] = reasoning;
  std::fprintf(stderr, "%s\n", out.dump().c_str());
  return absl::OkStatus();
}

}  // namespace dsinfer::cli
