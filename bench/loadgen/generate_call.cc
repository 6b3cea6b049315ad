// One Generate stream: timestamps every message, records the final status and trailers.
#include "bench/loadgen/generate_call.h"

#include "absl/strings/numbers.h"

namespace dsinfer::loadgen {

GenerateCall::GenerateCall(CallRecord record, v1::GenerateRequest request,
                           const std::string& api_key, double timeout_s,
                           std::function<void(GenerateCall*, CallRecord&&)> on_done)
    : record_(std::move(record)), request_(std::move(request)), on_done_(std::move(on_done)) {
  if (!api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + api_key);
  ctx_.set_deadline(std::chrono::system_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
}

void GenerateCall::Start(v1::Inference::Stub* stub) {
  record_.start = Clock::now();
  stub->async()->Generate(&ctx_, &request_, this);
  StartRead(&response_);
  StartCall();
}

void GenerateCall::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  const Clock::time_point now = Clock::now();
  if (record_.final_messages > 0) record_.final_was_last = false;
  if (record_.messages == 0) record_.request_id = response_.request_id();
  ++record_.messages;
  const int32_t n = response_.token_ids_size();
  if (n > 0) {
    record_.message_s.push_back(std::chrono::duration<double>(now - record_.start).count());
    record_.message_tokens.push_back(n);
    record_.tokens += n;
  }
  if (response_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
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

void GenerateCall::OnDone(const grpc::Status& status) {
  record_.end = Clock::now();
  record_.code = status.error_code();
  record_.status_message = status.error_message();
  const auto& trailers = ctx_.GetServerTrailingMetadata();
  if (auto it = trailers.find("retry-after-ms"); it != trailers.end()) {
    int64_t ms = -1;
    if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms)) {
      record_.retry_after_ms = ms;
    }
  }
  // Free the call before telling the driver: once told, the driver may finish its run and tear
  // down the channels this call's context still refers to. `self` is only compared, never used.
  auto done = std::move(on_done_);
  CallRecord record = std::move(record_);
  GenerateCall* self = this;
  delete this;
  done(self, std::move(record));
}

}  // namespace dsinfer::loadgen
