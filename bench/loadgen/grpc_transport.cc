// The gRPC transport: one Generate stream per call on the callback API, a channel (one HTTP/2
// connection) per tenant. Timestamps every message, records the final status and trailers.
#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "bench/loadgen/transport.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"

namespace dsinfer::loadgen {
namespace {

v1::GenerateRequest ToProto(const LoadRequest& r) {
  v1::GenerateRequest req;
  if (r.chat) {
    v1::ChatMessage* m = req.mutable_chat()->add_messages();
    m->set_role("user");
    m->set_content(r.text);
  } else if (r.text_prompt) {
    req.set_prompt(r.text);
  } else {
    auto* ids = req.mutable_token_ids()->mutable_ids();
    ids->Reserve(static_cast<int>(r.token_ids.size()));
    for (int32_t id : r.token_ids) ids->Add(id);
  }
  req.set_max_tokens(static_cast<uint32_t>(r.max_tokens));
  req.set_ignore_eos(r.ignore_eos);
  req.set_priority(r.priority);
  req.set_client_request_id(r.client_request_id);
  return req;
}

// Callbacks run on gRPC threads; a call touches only its own record.
class GenerateCall : public StreamCall, public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateCall(std::shared_ptr<grpc::Channel> channel, v1::Inference::Stub* stub, CallRecord record,
               v1::GenerateRequest request, const std::string& api_key, double timeout_s,
               CallDone on_done)
      : channel_(std::move(channel)),
        stub_(stub),
        record_(std::move(record)),
        request_(std::move(request)),
        on_done_(std::move(on_done)) {
    if (!api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + api_key);
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  }

  void Start() override {
    record_.start = Clock::now();
    stub_->async()->Generate(&ctx_, &request_, this);
    StartRead(&response_);
    StartCall();
  }

  void Cancel() override { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    const Clock::time_point now = Clock::now();
    const int32_t n = response_.token_ids_size();
    const bool is_final = response_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED;
    if (record_.final_messages > 0) record_.final_was_last = false;
    if (record_.messages == 0) record_.request_id = response_.request_id();
    ++record_.messages;
    if (n > 0) {
      record_.message_s.push_back(std::chrono::duration<double>(now - record_.start).count());
      record_.message_tokens.push_back(n);
      record_.tokens += n;
    }
    if (is_final) {
      ++record_.final_messages;
      record_.finish_reason = response_.finish_reason();
      if (response_.has_usage()) {
        record_.usage_completion_tokens = response_.usage().completion_tokens();
        record_.usage_queue_s = response_.usage().queue_seconds();
      }
    }
    response_.Clear();
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.end = Clock::now();
    // gRPC and absl number their status codes alike.
    record_.code = static_cast<absl::StatusCode>(status.error_code());
    record_.status_message = status.error_message();
    const auto& trailers = ctx_.GetServerTrailingMetadata();
    if (auto it = trailers.find("retry-after-ms"); it != trailers.end()) {
      int64_t ms = -1;
      if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms)) {
        record_.retry_after_ms = ms;
      }
    }
    // Tell the driver while the call is alive (it may still be cancelling it under its lock),
    // then free the call; `channel_` outlives `ctx_` (declared first), so the driver may tear
    // down its channels as soon as it has been told.
    CallDone done = std::move(on_done_);
    done(this, std::move(record_));
    delete this;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  v1::Inference::Stub* stub_;  // the transport's; used in Start only
  CallRecord record_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  grpc::ClientContext ctx_;
  CallDone on_done_;
};

class GrpcTransport : public Transport {
 public:
  explicit GrpcTransport(const WorkloadSpec& spec) : spec_(spec) {
    for (size_t i = 0; i < spec.tenants.size(); ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection per tenant
      args.SetMaxReceiveMessageSize(64 << 20);
      channels_.push_back(
          grpc::CreateCustomChannel(spec.target, grpc::InsecureChannelCredentials(), args));
      stubs_.push_back(v1::Inference::NewStub(channels_.back()));
    }
  }

  StreamCall* NewCall(CallRecord record, const LoadRequest& request,
                      const CallDone& on_done) override {
    const int32_t tenant = record.tenant;
    return new GenerateCall(channels_[tenant], stubs_[tenant].get(), std::move(record),
                            ToProto(request), spec_.tenants[tenant].api_key,
                            spec_.request_timeout_s, on_done);
  }

 private:
  const WorkloadSpec& spec_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs_;
};

}  // namespace

std::unique_ptr<Transport> MakeGrpcTransport(const WorkloadSpec& spec) {
  return std::make_unique<GrpcTransport>(spec);
}

absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(const WorkloadSpec& spec) {
  if (spec.protocol == Protocol::kOpenAi) return MakeOpenAiTransport(spec);
  return MakeGrpcTransport(spec);
}

}  // namespace dsinfer::loadgen
