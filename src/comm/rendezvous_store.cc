// RendezvousServer (callback-API service + one timer thread) and RendezvousClient / GrpcStore.
#include "src/comm/rendezvous_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <list>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dsinfer/internal/v1/rendezvous.grpc.pb.h"
#include "gloo/common/error.h"

namespace dsinfer {
namespace {

namespace pb = ::dsinfer::internal::v1;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kMaxMessageBytes = 64 << 20;
// Server-side DEADLINE_EXCEEDED carries this in error_details, to tell "keys missing" from the
// client's own deadline (leader unreachable or too slow).
constexpr char kKeysMissing[] = "dsinfer.rendezvous.keys-missing";
// The client's deadline is the wait's plus this, so that the server's answer naming the missing
// keys arrives before the client gives up on its own.
constexpr milliseconds kGrace(500);

std::string QuotedKeys(const std::vector<std::string>& keys) {
  return absl::StrJoin(keys, ", ", [](std::string* out, const std::string& k) {
    absl::StrAppend(out, "\"", absl::CHexEscape(k), "\"");
  });
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

class RendezvousServer::Service final : public pb::Rendezvous::CallbackService {
 public:
  // A Get waiting for keys; finished exactly once, by whoever removes it from waiters_.
  class Waiter final : public grpc::ServerUnaryReactor {
   public:
    Waiter(Service* service, const pb::GetRequest* request, pb::GetResponse* response,
           Clock::time_point deadline, milliseconds timeout)
        : service_(service),
          request_(request),
          response_(response),
          deadline_(deadline),
          timeout_(timeout) {}
    void OnCancel() override { service_->Cancel(this); }
    void OnDone() override { delete this; }

    Service* const service_;
    const pb::GetRequest* const request_;
    pb::GetResponse* const response_;
    const Clock::time_point deadline_;
    const milliseconds timeout_;
  };

  explicit Service(std::string token) : token_(std::move(token)) {
    timer_ = std::thread([this] { ExpireLoop(); });
  }
  ~Service() { StopWaits(); }

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* context, const pb::SetRequest* request,
                                pb::SetResponse*) override {
    if (grpc::Status s = Authorize(*context); !s.ok()) return Finished(context, s);
    if (request->key().empty()) return Finished(context, EmptyKey());
    std::vector<Waiter*> ready;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stopping_;
      if (!stopping) values_[request->key()] = request->value();
      for (auto it = waiters_.begin(); !stopping && it != waiters_.end();) {
        if (Missing(*(*it)->request_).empty()) {
          Fill(**it);
          ready.push_back(*it);
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (Waiter* w : ready) w->Finish(grpc::Status::OK);
    return Finished(context, stopping ? Stopping() : grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const pb::GetRequest* request,
                                pb::GetResponse* response) override {
    if (grpc::Status s = Authorize(*context); !s.ok()) return Finished(context, s);
    const auto now = Clock::now();
    const milliseconds timeout(request->timeout_ms());
    auto deadline = now + timeout;
    // Answer (naming the keys) a little before the caller's own deadline, when that is earlier.
    const auto call_left = context->deadline() - std::chrono::system_clock::now();
    if (call_left < timeout + milliseconds(50)) {
      deadline = now + std::chrono::duration_cast<Clock::duration>(call_left) - milliseconds(50);
    }
    for (const std::string& key : request->keys()) {
      if (key.empty()) return Finished(context, EmptyKey());
    }
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        status = Stopping();
      } else if (const std::vector<std::string> missing = Missing(*request); missing.empty()) {
        if (!request->wait_only()) {
          for (const std::string& key : request->keys()) response->add_values(values_.at(key));
        }
      } else if (deadline <= now) {
        status = MissingStatus(missing, timeout);
      } else {
        auto* waiter = new Waiter(this, request, response, deadline, timeout);
        waiters_.push_back(waiter);
        timer_cv_.notify_one();
        return waiter;
      }
    }
    return Finished(context, status);
  }

  // Finishes every wait with UNAVAILABLE, refuses new calls and stops the timer thread.
  void StopWaits() {
    std::list<Waiter*> waiters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      waiters.swap(waiters_);
      timer_cv_.notify_all();
    }
    for (Waiter* w : waiters) w->Finish(Stopping());
    if (timer_.joinable()) timer_.join();
  }

 private:
  grpc::Status Authorize(const grpc::CallbackServerContext& context) const {
    if (token_.empty()) return grpc::Status::OK;
    const auto& md = context.client_metadata();
    const auto it = md.find(kRendezvousTokenHeader);
    if (it != md.end() &&
        ConstantTimeEquals(absl::string_view(it->second.data(), it->second.size()), token_)) {
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat("missing or wrong ", kRendezvousTokenHeader));
  }

  static grpc::ServerUnaryReactor* Finished(grpc::CallbackServerContext* context,
                                            const grpc::Status& status) {
    auto* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  static grpc::Status EmptyKey() {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty key");
  }
  static grpc::Status Stopping() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the leader is stopping");
  }
  static grpc::Status MissingStatus(const std::vector<std::string>& missing, milliseconds timeout) {
    return grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("key(s) ", QuotedKeys(missing), " not set after ", timeout.count(), " ms"),
        kKeysMissing);
  }

  // Under mu_.
  std::vector<std::string> Missing(const pb::GetRequest& request) const {
    std::vector<std::string> missing;
    for (const std::string& key : request.keys()) {
      if (!values_.contains(key)) missing.push_back(key);
    }
    return missing;
  }
  void Fill(Waiter& w) const {
    if (w.request_->wait_only()) return;
    for (const std::string& key : w.request_->keys()) w.response_->add_values(values_.at(key));
  }

  void Cancel(Waiter* waiter) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto it = std::find(waiters_.begin(), waiters_.end(), waiter);
      if (it == waiters_.end()) return;  // being finished by Set, the timer or StopWaits
      waiters_.erase(it);
    }
    waiter->Finish(grpc::Status::CANCELLED);
  }

  void ExpireLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      auto next = Clock::time_point::max();
      for (const Waiter* w : waiters_) next = std::min(next, w->deadline_);
      if (next == Clock::time_point::max()) {
        timer_cv_.wait(lock);
      } else {
        timer_cv_.wait_until(lock, next);
      }
      const auto now = Clock::now();
      std::vector<std::pair<Waiter*, grpc::Status>> expired;
      for (auto it = waiters_.begin(); it != waiters_.end();) {
        if ((*it)->deadline_ <= now) {
          expired.emplace_back(*it, MissingStatus(Missing(*(*it)->request_), (*it)->timeout_));
          it = waiters_.erase(it);
        } else {
          ++it;
        }
      }
      lock.unlock();
      for (auto& [w, status] : expired) w->Finish(status);
      lock.lock();
    }
  }

  const std::string token_;
  std::mutex mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  absl::flat_hash_map<std::string, std::string> values_;
  std::list<Waiter*> waiters_;
  std::thread timer_;
  std::unique_ptr<grpc::Server> server_;
  friend class RendezvousServer;
};

RendezvousServer::RendezvousServer() = default;
RendezvousServer::~RendezvousServer() { Stop(); }

absl::StatusOr<int> RendezvousServer::Start(absl::string_view listen, std::string token) {
  if (service_ != nullptr)
    return absl::FailedPreconditionError("rendezvous server already started");
  auto service = std::make_unique<Service>(std::move(token));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(std::string(listen), grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(service.get());
  service->server_ = builder.BuildAndStart();
  if (service->server_ == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("rendezvous: cannot listen on ", listen));
  }
  service_ = std::move(service);
  port_ = port;
  return port;
}

void RendezvousServer::Stop() {
  if (service_ == nullptr) return;
  service_->StopWaits();
  // Returns once every callback RPC is done, so no reactor outlives the service.
  service_->server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  service_->server_.reset();
  service_.reset();
}

// ---------------------------------------------------------------------------------------------
// Client

struct RendezvousClient::Stub {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Rendezvous::Stub> stub;
};

RendezvousClient::RendezvousClient(std::string leader, RendezvousClientOptions options)
    : leader_(std::move(leader)), options_(std::move(options)), stub_(std::make_unique<Stub>()) {
  grpc::ChannelArguments args;
  // Reconnect quickly once the leader comes up (gRPC's default backoff grows to 120 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  stub_->channel = grpc::CreateCustomChannel(leader_, grpc::InsecureChannelCredentials(), args);
  stub_->stub = pb::Rendezvous::NewStub(stub_->channel);
}

RendezvousClient::~RendezvousClient() = default;

namespace {

// Calls `rpc` until it succeeds, fails for good, or `timeout` passes. wait_for_ready makes each
// attempt wait for the connection (the leader may not be up yet) instead of failing at once;
// UNAVAILABLE (a leader restarting, a dropped connection) is retried with a backoff.
template <typename Rpc>
absl::Status CallWithRetry(const std::string& leader, const std::string& token,
                           grpc::Channel& channel, absl::string_view what, milliseconds timeout,
                           Rpc&& rpc) {
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  milliseconds backoff(50);
  grpc::Status last;
  for (;;) {
    const auto left = std::max(milliseconds(0),
                               std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + left + kGrace);
    if (!token.empty()) context.AddMetadata(kRendezvousTokenHeader, token);
    last = rpc(&context, left);
    if (last.ok()) return absl::OkStatus();
    const auto code = last.error_code();
    const std::string prefix = absl::StrCat("rendezvous at ", leader, ": ", what, ": ");
    if (code == grpc::StatusCode::DEADLINE_EXCEEDED && last.error_details() == kKeysMissing) {
      return absl::DeadlineExceededError(absl::StrCat(prefix, last.error_message()));
    }
    if (code != grpc::StatusCode::UNAVAILABLE && code != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return absl::Status(static_cast<absl::StatusCode>(code),
                          absl::StrCat(prefix, last.error_message()));
    }
    if (Clock::now() + backoff >= deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(1000));
  }
  const bool connected = channel.GetState(false) == GRPC_CHANNEL_READY;
  return absl::DeadlineExceededError(absl::StrCat(
      "rendezvous at ", leader, ": ", what, ": no answer within ", timeout.count(), " ms",
      connected ? "" : " (leader unreachable)", "; last error: ", last.error_message()));
}

}  // namespace

absl::Status RendezvousClient::Set(absl::string_view key, absl::string_view value) {
  pb::SetRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  return CallWithRetry(leader_, options_.token, *stub_->channel,
                       absl::StrCat("set \"", absl::CHexEscape(key), "\""), options_.timeout,
                       [&](grpc::ClientContext* context, milliseconds) {
                         pb::SetResponse response;
                         return stub_->stub->Set(context, request, &response);
                       });
}

absl::StatusOr<std::vector<std::string>> RendezvousClient::Fetch(absl::Span<const std::string> keys,
                                                                 milliseconds timeout,
                                                                 bool wait_only) {
  pb::GetRequest request;
  for (const std::string& k : keys) request.add_keys(k);
  request.set_wait_only(wait_only);
  pb::GetResponse response;
  const std::string what =
      absl::StrCat(wait_only ? "wait for " : "get ", QuotedKeys({keys.begin(), keys.end()}));
  absl::Status status =
      CallWithRetry(leader_, options_.token, *stub_->channel, what, timeout,
                    [&](grpc::ClientContext* context, milliseconds left) {
                      request.set_timeout_ms(static_cast<uint32_t>(
                          std::min<int64_t>(left.count(), std::numeric_limits<uint32_t>::max())));
                      response.Clear();
                      return stub_->stub->Get(context, request, &response);
                    });
  if (!status.ok()) return status;
  if (wait_only) return std::vector<std::string>();
  if (response.values_size() != static_cast<int>(keys.size())) {
    return absl::InternalError(absl::StrCat("rendezvous at ", leader_, ": ", what, ": got ",
                                            response.values_size(), " values"));
  }
  return std::vector<std::string>(response.values().begin(), response.values().end());
}

absl::StatusOr<std::vector<std::string>> RendezvousClient::Get(absl::Span<const std::string> keys,
                                                               milliseconds timeout) {
  return Fetch(keys, timeout, /*wait_only=*/false);
}

absl::Status RendezvousClient::Wait(absl::Span<const std::string> keys, milliseconds timeout) {
  return Fetch(keys, timeout, /*wait_only=*/true).status();
}

// ---------------------------------------------------------------------------------------------
// GrpcStore

GrpcStore::GrpcStore(std::string leader, RendezvousClientOptions options)
    : client_(std::move(leader), std::move(options)) {}

void GrpcStore::set(const std::string& key, const std::vector<char>& data) {
  const absl::Status s = client_.Set(key, absl::string_view(data.data(), data.size()));
  if (!s.ok()) GLOO_THROW_IO_EXCEPTION(s.ToString());
}

std::vector<char> GrpcStore::get(const std::string& key) {
  absl::StatusOr<std::vector<std::string>> values = client_.Get({key}, client_.options().timeout);
  if (!values.ok()) GLOO_THROW_IO_EXCEPTION(values.status().ToString());
  const std::string& v = values->front();
  return std::vector<char>(v.begin(), v.end());
}

void GrpcStore::wait(const std::vector<std::string>& keys) {
  wait(keys, client_.options().timeout);
}

void GrpcStore::wait(const std::vector<std::string>& keys, const milliseconds& timeout) {
  // gloo passes kNoTimeout (zero) for "no timeout"; use ours then.
  const milliseconds t = timeout == gloo::kNoTimeout ? client_.options().timeout : timeout;
  const absl::Status s = client_.Wait(keys, t);
  if (!s.ok()) GLOO_THROW_IO_EXCEPTION(s.ToString());
}

}  // namespace dsinfer
